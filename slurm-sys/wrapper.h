/* The public Slurm headers bindgen reads. slurm.h first: spank.h, slurm_errno.h and slurmdb.h use its types.
   slurmdb.h: the accounting records (slurmdb_user_rec_t for the default account, jobs and
   associations for mlacct). */
#include <stdint.h>
#include <sys/types.h>
#include <slurm/slurm_version.h>
#include <slurm/slurm.h>
#include <slurm/slurm_errno.h>
#include <slurm/slurmdb.h>
#include <slurm/spank.h>
