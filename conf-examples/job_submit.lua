--[[
job_submit.lua: the rules of conf-examples/mlpolicy.json written the way sites write them
today with job_submit/lua (JobSubmitPlugins=lua, this file next to slurm.conf). It exists
for comparison: scripts/bench-mlpolicy.sh measures it against job_submit_mlpolicy.so.
Prefer the native plugin: Lua runs under one global lock inside slurmctld, and a script
error lets jobs through unchecked.
--]]

local policy = {
  doc_url = "https://wiki.example.org/hpc/gpu-policy",
  admin_uids = { [0] = true },
  admin_accounts = { ["hpc-ops"] = true },
  default_gpu_partition = "gpu",
  default_cpu_partition = "cpu",
  partitions = {
    gpu = { kind = "gpu", max_gpus_per_job = 64, max_gpus_per_node = 8, gpu_types = { h100 = true },
            min_cpus_per_gpu = 4, max_cpus_per_gpu = 24, gpus_per_node = 8, whole_nodes = true,
            max_time = 2 * 24 * 60 },
    interactive = { kind = "gpu", max_gpus_per_job = 2, max_time = 4 * 60, require_time = true },
    cpu = { kind = "cpu", max_time = 7 * 24 * 60 },
  },
}

local NO_VAL = 4294967294
local NO_VAL16 = 65534

-- GPU entries of a tres_per_* string: "gres:gpu:4", "gres/gpu:h100:4", "gres/gpu=1", "gres/gpu".
local function gpus(tres)
  if tres == nil then return nil, {} end
  local total, types, found = 0, {}, false
  for entry in string.gmatch(tres, "[^,]+") do
    local rest = entry:gsub("^gres[:/]", "")
    local name, more = rest:match("^([^:=]+)(.*)$")
    if name == "gpu" then
      found = true
      local t, n = more:match("^:([%a_][%w_%-%.]*):(%d+)$")
      if not t then t, n = more:match("^:([%a_][%w_%-%.]*)=(%d+)$") end
      if not t then n = more:match("^[:=](%d+)$") end
      if not t and not n then t = more:match("^:([%a_][%w_%-%.]*)$") end
      if t then types[#types + 1] = t end
      total = total + (tonumber(n) or 1)
    end
  end
  if not found then return nil, {} end
  return total, types
end

local function refuse(msg, code)
  if policy.doc_url then msg = msg .. " (see " .. policy.doc_url .. ")" end
  slurm.log_user("mlpolicy: %s", msg)
  return code or slurm.ERROR
end

local function check_partition(name, r, j)
  local asked = j.per_job or j.per_node or j.per_task or j.per_socket
  if r.kind == "gpu" and not asked then
    return refuse("partition '" .. name .. "' needs a GPU request: add --gpus-per-node=N (or submit to partition 'cpu')")
  end
  if r.kind == "cpu" and asked then
    return refuse("partition '" .. name .. "' has no GPUs: remove the GPU request (or submit to partition 'gpu')")
  end
  if asked then
    local per_node = j.per_node
    if not per_node and j.per_task and j.ntasks_per_node then per_node = j.per_task * j.ntasks_per_node end
    if r.max_gpus_per_node and per_node and per_node > r.max_gpus_per_node then
      return refuse("partition '" .. name .. "' allows at most " .. r.max_gpus_per_node .. " GPUs per node")
    end
    local total = math.max(j.per_job or 0, (j.per_node or 0) * j.nodes, (j.per_task or 0) * j.tasks)
    if r.max_gpus_per_job and total > r.max_gpus_per_job then
      return refuse("partition '" .. name .. "' allows at most " .. r.max_gpus_per_job .. " GPUs per job")
    end
    if r.gpu_types then
      for _, t in ipairs(j.types) do
        if not r.gpu_types[t] then return refuse("partition '" .. name .. "' has no '" .. t .. "' GPUs") end
      end
    end
    if j.cpus_per_gpu and ((r.min_cpus_per_gpu and j.cpus_per_gpu < r.min_cpus_per_gpu)
        or (r.max_cpus_per_gpu and j.cpus_per_gpu > r.max_cpus_per_gpu)) then
      return refuse("partition '" .. name .. "': CPUs per GPU out of range")
    end
    if r.whole_nodes and j.nodes > 1 and not j.exclusive and per_node ~= r.gpus_per_node then
      return refuse("partition '" .. name .. "': a job on " .. j.nodes .. " nodes must take whole nodes")
    end
  end
  if r.require_time and not j.time_limit then
    return refuse("partition '" .. name .. "' needs a time limit")
  end
  if r.max_time and j.time_limit and j.time_limit > r.max_time then
    return refuse("partition '" .. name .. "' allows at most " .. r.max_time .. " minutes")
  end
  return slurm.SUCCESS
end

function slurm_job_submit(job_desc, part_list, submit_uid)
  if policy.admin_uids[job_desc.user_id] or (job_desc.account and policy.admin_accounts[job_desc.account]) then
    return slurm.SUCCESS
  end
  local j = { types = {} }
  local t
  j.per_job, t = gpus(job_desc.tres_per_job); for _, x in ipairs(t) do j.types[#j.types + 1] = x end
  j.per_node, t = gpus(job_desc.tres_per_node); for _, x in ipairs(t) do j.types[#j.types + 1] = x end
  j.per_socket, t = gpus(job_desc.tres_per_socket); for _, x in ipairs(t) do j.types[#j.types + 1] = x end
  j.per_task, t = gpus(job_desc.tres_per_task); for _, x in ipairs(t) do j.types[#j.types + 1] = x end
  -- Not ipairs: it stops at the first unset (nil) field, which skipped this check.
  for _, n in pairs({ j.per_job, j.per_node, j.per_socket, j.per_task }) do
    if n == 0 then return refuse("a request for 0 GPUs is not allowed: leave the GPU option out") end
  end
  j.nodes = (job_desc.min_nodes ~= NO_VAL and job_desc.min_nodes) or 1
  j.tasks = (job_desc.num_tasks ~= NO_VAL and job_desc.num_tasks) or 1
  j.ntasks_per_node = job_desc.ntasks_per_node ~= NO_VAL16 and job_desc.ntasks_per_node or nil
  j.time_limit = job_desc.time_limit ~= NO_VAL and job_desc.time_limit or nil
  j.exclusive = job_desc.shared == 0
  if job_desc.cpus_per_tres then j.cpus_per_gpu = gpus(job_desc.cpus_per_tres) end
  local asked = j.per_job or j.per_node or j.per_task or j.per_socket
  local names = {}
  if job_desc.partition == nil then
    local default = asked and policy.default_gpu_partition or policy.default_cpu_partition
    if default then
      job_desc.partition = default
      names = { default }
    end
  else
    for p in string.gmatch(job_desc.partition, "[^,]+") do names[#names + 1] = p end
  end
  for _, name in ipairs(names) do
    local r = policy.partitions[name]
    if r then
      local rc = check_partition(name, r, j)
      if rc ~= slurm.SUCCESS then return rc end
    end
  end
  return slurm.SUCCESS
end

function slurm_job_modify(job_desc, job_rec, part_list, modify_uid)
  return slurm.SUCCESS
end

return slurm.SUCCESS
