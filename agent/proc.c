/* proc.c - fork/exec with a timeout and bounded captured output. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "clock.h"
#include "error.h"
#include "proc.h"
#include "tick.h"

extern char **environ;

int proc_split(char ***argv_out, const char *cmd, const char *dir)
{
    struct re_buf words;   /* words NUL-separated */
    size_t starts[PROC_MAX_ARGS], n = 0;
    const char *p = cmd;
    int r = 0;
    re_buf_init(&words, 64 * 1024);
    for (;;) {
        while (*p == ' ' || *p == '\t')
            p++;
        if (!*p)
            break;
        if (n >= PROC_MAX_ARGS) {
            r = -RE_EINVAL;
            goto out;
        }
        starts[n++] = words.len;
        while (*p && *p != ' ' && *p != '\t') {
            if (*p == '\'' || *p == '"') {
                char q = *p++;
                const char *end = strchr(p, q);
                if (!end) {
                    r = -RE_EINVAL;
                    goto out;
                }
                while (p < end) {
                    if (strncmp(p, "{dir}", 5) == 0 && p + 5 <= end) {
                        if ((r = re_buf_append_str(&words, dir ? dir : "")) < 0)
                            goto out;
                        p += 5;
                    } else if ((r = re_buf_append(&words, p++, 1)) < 0) {
                        goto out;
                    }
                }
                p = end + 1;
            } else if (strncmp(p, "{dir}", 5) == 0) {
                if ((r = re_buf_append_str(&words, dir ? dir : "")) < 0)
                    goto out;
                p += 5;
            } else if ((r = re_buf_append(&words, p++, 1)) < 0) {
                goto out;
            }
        }
        if ((r = re_buf_append(&words, "", 1)) < 0)
            goto out;
    }
    if (n == 0) {
        r = -RE_EINVAL;
        goto out;
    }
    /* One block: pointer array then the strings. */
    size_t ptrs = (n + 1) * sizeof(char *);
    char **argv = malloc(ptrs + words.len);
    if (!argv) {
        r = -RE_ENOMEM;
        goto out;
    }
    char *text = (char *)argv + ptrs;
    memcpy(text, words.ptr, words.len);
    for (size_t i = 0; i < n; i++)
        argv[i] = text + starts[i];
    argv[n] = NULL;
    *argv_out = argv;
out:
    re_buf_release(&words);
    return r;
}

static void child_exec(char *const argv[], const char *const *env, int out_fd, int merge)
{
    int devnull = open("/dev/null", O_RDWR);
    sigset_t none;
    setpgid(0, 0);
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    signal(SIGPIPE, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    signal(SIGINT, SIG_DFL);
    signal(SIGHUP, SIG_DFL);
    if (devnull >= 0)
        dup2(devnull, 0);
    if (out_fd >= 0) {
        dup2(out_fd, 1);
        if (merge)
            dup2(out_fd, 2);
    } else if (devnull >= 0) {
        dup2(devnull, 1);
    }
    for (size_t i = 0; env && env[i]; i++)
        putenv((char *)env[i]);
    execvp(argv[0], argv);
    _exit(127);
}

int proc_run(struct proc_result *res, char *const argv[], const char *const *env,
             uint64_t timeout_ms, int merge_stderr, struct re_buf *out,
             volatile sig_atomic_t *abort_flag)
{
    int pipefd[2] = { -1, -1 }, status = 0;
    pid_t pid;
    uint64_t deadline = re_mono_ms() + timeout_ms;
    bool killed = false, done = false, eof = false;
    res->exit_code = -1;
    res->timed_out = 0;
    if (pipe2(pipefd, O_CLOEXEC) < 0)
        return -RE_EIO;
    pid = fork();
    if (pid < 0) {
        close(pipefd[0]);
        close(pipefd[1]);
        return -RE_EIO;
    }
    if (pid == 0)
        child_exec(argv, env, pipefd[1], merge_stderr);
    setpgid(pid, pid);
    close(pipefd[1]);
    while (!done) {
        uint64_t now = re_mono_ms();
        tick();
        if (!killed && (now >= deadline || (abort_flag && *abort_flag))) {
            res->timed_out = now >= deadline;
            kill(-pid, SIGKILL);
            kill(pid, SIGKILL);
            killed = true;
        }
        if (!eof) {
            struct pollfd pfd = { pipefd[0], POLLIN, 0 };
            int wait_ms = killed ? 100 : (int)(deadline - now < 200 ? deadline - now : 200);
            int n = poll(&pfd, 1, wait_ms);
            if (n > 0) {
                char chunk[4096];
                ssize_t got = read(pipefd[0], chunk, sizeof(chunk));
                if (got > 0) {
                    if (out && out->len < out->max) {
                        size_t room = out->max - out->len - 1;
                        re_buf_append(out, chunk, (size_t)got < room ? (size_t)got : room);
                    }
                } else if (got == 0 || (errno != EINTR && errno != EAGAIN)) {
                    eof = true;
                }
            }
        } else {
            struct timespec ts = { 0, 20 * 1000 * 1000 };
            nanosleep(&ts, NULL);
        }
        pid_t w = waitpid(pid, &status, WNOHANG);
        if (w == pid)
            done = true;
        else if (w < 0 && errno != EINTR)
            done = true;
    }
    /* Drain what is left without blocking on grandchildren that kept the pipe. */
    fcntl(pipefd[0], F_SETFL, O_NONBLOCK);
    for (;;) {
        char chunk[4096];
        ssize_t got = read(pipefd[0], chunk, sizeof(chunk));
        if (got <= 0)
            break;
        if (out && out->len + 1 < out->max) {
            size_t room = out->max - out->len - 1;
            re_buf_append(out, chunk, (size_t)got < room ? (size_t)got : room);
        }
    }
    close(pipefd[0]);
    if (WIFEXITED(status))
        res->exit_code = WEXITSTATUS(status);
    else if (WIFSIGNALED(status))
        res->exit_code = 128 + WTERMSIG(status);
    return 0;
}
