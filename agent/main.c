/* main.c - resedge-agent: the store-side daemon (enroll, run). */
#include <stdio.h>
#include <string.h>

static const char usage[] =
    "usage: resedge-agent <command> [options]\n"
    "\n"
    "Res-Edge agent: enrolls a store's cluster with the hub, reports it, and pulls\n"
    "its desired state.\n"
    "\n"
    "commands:\n"
    "  enroll   register this node with a one-time code (not implemented yet)\n"
    "  run      run the agent service (not implemented yet)\n";

int main(int argc, char **argv)
{
    const char *cmd = argc > 1 ? argv[1] : NULL;
    if (cmd && (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0)) {
        fputs(usage, stdout);
        return 0;
    }
    if (cmd && strcmp(cmd, "--version") == 0) {
        printf("resedge-agent %s\n", RE_VERSION);
        return 0;
    }
    fprintf(stderr, "resedge-agent: %s%s%s\n\n%s", cmd ? "command '" : "no command given",
            cmd ? cmd : "", cmd ? "' is not implemented yet" : "", usage);
    return 64;
}
