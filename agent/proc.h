/* proc.h - runs a program (no shell) with a timeout, its output captured up
 * to a bound, and splits configured command lines into argv with {dir}
 * substituted: data from the hub never reaches a shell. */
#ifndef AGENT_PROC_H
#define AGENT_PROC_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include "buf.h"

#define PROC_MAX_ARGS 64

struct proc_result {
    int exit_code;                  /* exit status, or 128+signal, -1 when not run */
    int timed_out;
};

/* Runs argv[0] (searched in PATH) with argv. out (may be NULL) gets stdout
 * (and stderr when merge_stderr), truncated at out->max; extra env entries
 * "K=V" (NULL-terminated, may be NULL) are added. Kills the process group
 * after timeout_ms or when *abort_flag becomes non-zero. Returns 0 when it
 * ran (see res), -RE_EIO when it could not be started. */
int proc_run(struct proc_result *res, char *const argv[], const char *const *env,
             uint64_t timeout_ms, int merge_stderr, struct re_buf *out,
             volatile sig_atomic_t *abort_flag);

/* Splits cmd on blanks, with '...' and "..." quoting (no escapes, no
 * expansion), replacing every "{dir}" inside a word by dir. *argv_out is one
 * allocation (free() it), NULL-terminated. -RE_EINVAL for an empty command,
 * an unterminated quote or more than PROC_MAX_ARGS words. */
int proc_split(char ***argv_out, const char *cmd, const char *dir);

#endif
