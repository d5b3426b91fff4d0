/* The public Slurm headers bindgen reads. slurm.h first: spank.h and slurm_errno.h use its types. */
#include <stdint.h>
#include <sys/types.h>
#include <slurm/slurm_version.h>
#include <slurm/slurm.h>
#include <slurm/slurm_errno.h>
#include <slurm/spank.h>
