//! Test tool: leaves SysV IPC objects and /dev/shm files behind the way a killed NCCL job
//! does, or holds a segment attached like a running one. Used by the ml-epilog tests and
//! benchmark; runs as whatever user starts it.
//!
//!   ipc-fixture create [--shm N] [--shm-size B] [--sem N] [--msg N] [--files N]
//!                      [--file-size B] [--prefix P] [--dir D]
//!   ipc-fixture hold --seconds S [--shm-size B] [--file NAME] [--dir D]
//!   ipc-fixture attach --id SHMID --seconds S       (attach an existing segment and wait)
//!
//! Each created object is printed as `shm ID`, `sem ID`, `msg ID` or `file PATH`.

use std::fs;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

mod sysv;

struct Opts {
    shm: usize,
    shm_size: usize,
    sem: usize,
    msg: usize,
    files: usize,
    file_size: u64,
    prefix: String,
    dir: PathBuf,
    seconds: u64,
    file: Option<String>,
    id: Option<i32>,
}

fn parse(args: &[String]) -> Result<Opts, String> {
    let mut o = Opts {
        shm: 0,
        shm_size: 1 << 20,
        sem: 0,
        msg: 0,
        files: 0,
        file_size: 4096,
        prefix: format!("nccl-fixture-{}", std::process::id()),
        dir: PathBuf::from("/dev/shm"),
        seconds: 0,
        file: None,
        id: None,
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let v = it.next().ok_or_else(|| format!("{a} needs a value"))?;
        let n = || v.parse::<u64>().map_err(|_| format!("{a} takes a number"));
        match a.as_str() {
            "--shm" => o.shm = n()? as usize,
            "--shm-size" => o.shm_size = n()? as usize,
            "--sem" => o.sem = n()? as usize,
            "--msg" => o.msg = n()? as usize,
            "--files" => o.files = n()? as usize,
            "--file-size" => o.file_size = n()?,
            "--prefix" => o.prefix = v.clone(),
            "--dir" => o.dir = PathBuf::from(v),
            "--seconds" => o.seconds = n()?,
            "--file" => o.file = Some(v.clone()),
            "--id" => o.id = Some(v.parse().map_err(|_| "--id takes a number".to_string())?),
            _ => return Err(format!("unknown option {a}")),
        }
    }
    Ok(o)
}

fn new_file(path: &PathBuf, size: u64) -> Result<(), String> {
    let f = fs::File::create(path).map_err(|e| format!("create {}: {e}", path.display()))?;
    f.set_len(size)
        .map_err(|e| format!("size {}: {e}", path.display()))
}

fn create(o: &Opts) -> Result<(), String> {
    let mut out = std::io::stdout().lock();
    for _ in 0..o.shm {
        let _ = writeln!(out, "shm {}", sysv::new_shm(o.shm_size)?);
    }
    for _ in 0..o.sem {
        let _ = writeln!(out, "sem {}", sysv::new_sem()?);
    }
    for _ in 0..o.msg {
        let _ = writeln!(out, "msg {}", sysv::new_msg()?);
    }
    for i in 0..o.files {
        let path = o.dir.join(format!("{}-{i}", o.prefix));
        new_file(&path, o.file_size)?;
        let _ = writeln!(out, "file {}", path.display());
    }
    Ok(())
}

fn hold(o: &Opts) -> Result<(), String> {
    let id = sysv::new_shm(o.shm_size)?;
    let _attached = sysv::attach(id, false)?;
    if let Some(name) = &o.file {
        new_file(&o.dir.join(name), 4096)?;
    }
    println!("ready shm {id}");
    std::thread::sleep(Duration::from_secs(o.seconds));
    Ok(())
}

fn attach(o: &Opts) -> Result<(), String> {
    let id = o.id.ok_or("attach needs --id")?;
    let _attached = sysv::attach(id, true)?;
    println!("attached shm {id}");
    std::thread::sleep(Duration::from_secs(o.seconds));
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.split_first() {
        Some((cmd, rest)) if cmd == "create" => parse(rest).and_then(|o| create(&o)),
        Some((cmd, rest)) if cmd == "hold" => parse(rest).and_then(|o| hold(&o)),
        Some((cmd, rest)) if cmd == "attach" => parse(rest).and_then(|o| attach(&o)),
        _ => Err("usage: ipc-fixture create|hold|attach [options] (see the source header)".into()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ipc-fixture: {e}");
            ExitCode::FAILURE
        }
    }
}
