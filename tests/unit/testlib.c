/* testlib.c - forks each unit test case with a timeout and prints TAP. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "testlib.h"

static char tmpdir[256];

static void remove_tmpdir(void)
{
    if (tmpdir[0]) {
        char cmd[300];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
        if (system(cmd) != 0)
            fprintf(stderr, "cannot remove '%s'\n", tmpdir);
    }
}

const char *test_tmpdir(void)
{
    if (!tmpdir[0]) {
        const char *base = getenv("TMPDIR");
        snprintf(tmpdir, sizeof(tmpdir), "%s/re-unit-XXXXXX", base ? base : "/tmp");
        if (!mkdtemp(tmpdir)) {
            perror("mkdtemp");
            exit(1);
        }
        atexit(remove_tmpdir);
    }
    return tmpdir;
}

static int selected(int argc, char **argv, const char *name)
{
    if (argc < 2)
        return 1;
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], name) == 0)
            return 1;
    return 0;
}

int test_run(int argc, char **argv, const struct test_case *cases)
{
    int n = 0, failed = 0;
    const char *t = getenv("RE_TEST_TIMEOUT");
    unsigned timeout = t ? (unsigned)strtoul(t, NULL, 10) : 60;

    for (const struct test_case *c = cases; c->name; c++)
        if (selected(argc, argv, c->name))
            n++;
    printf("1..%d\n", n);
    fflush(stdout);
    n = 0;
    for (const struct test_case *c = cases; c->name; c++) {
        if (!selected(argc, argv, c->name))
            continue;
        n++;
        pid_t pid = fork();
        if (pid == 0) {
            alarm(timeout);
            c->fn();
            fflush(NULL);
            exit(0);
        }
        int st = 0;
        waitpid(pid, &st, 0);
        int ok = WIFEXITED(st) && WEXITSTATUS(st) == 0;
        if (!ok) {
            failed++;
            if (WIFSIGNALED(st))
                fprintf(stderr, "# %s: killed by signal %d%s\n", c->name,
                        WTERMSIG(st), WTERMSIG(st) == SIGALRM ? " (timeout)" : "");
        }
        printf("%s %d - %s\n", ok ? "ok" : "not ok", n, c->name);
        fflush(stdout);
    }
    return failed ? 1 : 0;
}
