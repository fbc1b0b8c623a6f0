/* run.h - `resedge-agent run`: the daemon's loop. Check-in every interval
 * (±20% jitter), exponential backoff with full jitter on failure (capped,
 * honouring Retry-After), certificate renewal when a third of its lifetime
 * remains, pulling and materializing the assigned revision, the mode's
 * deployment, and systemd notification (READY, WATCHDOG, STATUS).
 * SIGTERM/SIGINT stop it within a few seconds (transfers and child processes
 * are interrupted); SIGHUP reloads the configuration. */
#ifndef AGENT_RUN_H
#define AGENT_RUN_H

#define AGENT_EX_CONFIG 78          /* sysexits EX_CONFIG: not enrolled, bad config */

/* argv[0] is "run"; returns the process exit status. */
int agent_run_main(int argc, char **argv);

#endif
