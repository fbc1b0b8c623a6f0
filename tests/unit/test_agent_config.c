/* test_agent_config.c - the agent's config file and flags, backoff and
 * interval jitter bounds, the check-in answer parser and command splitting. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include "../../agent/backoff.h"
#include "../../agent/checkin.h"
#include "../../agent/config.h"
#include "../../agent/proc.h"
#include "buf.h"
#include "error.h"
#include "fsutil.h"
#include "log.h"
#include "testlib.h"

static const char *write_conf(const char *name, const char *text)
{
    static char path[4096];
    snprintf(path, sizeof(path), "%s/%s", test_tmpdir(), name);
    CHECK_EQ_INT(re_write_file_atomic(path, text, strlen(text), 0644), 0);
    return path;
}

static void config_file_ok(void)
{
    struct agent_config c;
    struct re_buf err;
    re_buf_init(&err, 4096);
    agent_config_defaults(&c);
    const char *p = write_conf("ok.conf", "# agent\n[agent]\nstate_dir = /srv/agent\n"
                                          "interval = 5m\nmode = apply\nlabel = region=central\n"
                                          "label = example.com/ring=beta\n"
                                          "apply_command = kubectl apply -k {dir}\n"
                                          "keep_revisions = 5\nlog_level = debug\n");
    CHECK_EQ_INT(agent_config_load(&c, p, &err), 0);
    CHECK_EQ_STR(c.state_dir, "/srv/agent");
    CHECK_EQ_INT(c.interval_ms, 300000);
    CHECK(c.interval_set);
    CHECK_EQ_INT(c.mode, AGENT_MODE_APPLY);
    CHECK_EQ_INT(c.n_labels, 2);
    CHECK_EQ_STR(c.labels[1].key, "example.com/ring");
    CHECK_EQ_STR(c.labels[1].value, "beta");
    CHECK_EQ_INT(c.keep_revisions, 5);
    CHECK_EQ_INT(c.log_level, RE_LOG_DEBUG);
    agent_config_release(&c);
    re_buf_release(&err);
}

/* Each bad file gives an error naming file:line. */
static void config_file_errors(void)
{
    static const struct {
        const char *text;
        const char *want;           /* substring of the message */
    } cases[] = {
        { "[agent]\nmode = none\nbogus = 1\n", ":3: unknown key 'bogus'" },
        { "[agent]\n\nmode = sideways\n", ":3: bad value 'sideways' for 'mode'" },
        { "[agent]\ninterval = soon\n", ":2: bad value 'soon' for 'interval'" },
        { "[agent]\ninterval = 0s\n", ":2: bad value '0s' for 'interval'" },
        { "[agent]\nlabel = novalue\n", ":2: label 'novalue' is not key=value" },
        { "[agent]\nlabel = bad key=v\n", ":2: label key 'bad key'" },
        { "[agent]\nlabel = k=" "0123456789012345678901234567890123456789012345678901234567890123\n",
          ":2: label value" },
        { "[other]\nmode = none\n", ":2: unknown key 'mode' in section [other]" },
        { "[agent]\nkeep_revisions = 0\n", ":2: bad value '0' for 'keep_revisions'" },
        { "[agent]\nmirror_url = git://x\n", ":2: bad value 'git://x' for 'mirror_url'" },
        { "[agent]\nmirror_auth = yes\n", ":2: bad value 'yes' for 'mirror_auth'" },
        { "[agent\nmode = none\n", ":1:" },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct agent_config c;
        struct re_buf err;
        char name[32];
        snprintf(name, sizeof(name), "bad%zu.conf", i);
        const char *p = write_conf(name, cases[i].text);
        re_buf_init(&err, 4096);
        agent_config_defaults(&c);
        CHECK(agent_config_load(&c, p, &err) < 0);
        if (!err.ptr || !strstr(err.ptr, cases[i].want) || !strstr(err.ptr, name)) {
            fprintf(stderr, "case %zu: '%s' lacks '%s'\n", i, err.ptr ? err.ptr : "",
                    cases[i].want);
            CHECK(0);
        }
        agent_config_release(&c);
        re_buf_release(&err);
    }
}

/* mirror_auth: auto is on unless the mirror listens on loopback only. */
static void mirror_auth_setting(void)
{
    struct agent_config c;
    struct re_buf err;
    re_buf_init(&err, 1024);
    agent_config_defaults(&c);
    CHECK_EQ_STR(agent_config_mirror_listen(&c), "127.0.0.1:8480");
    CHECK(!agent_config_mirror_auth(&c));           /* the default: loopback, auto */
    CHECK_EQ_INT(agent_config_set(&c, "mirror_listen", "0.0.0.0:8480", &err), 0);
    CHECK(agent_config_mirror_auth(&c));
    CHECK_EQ_INT(agent_config_set(&c, "mirror_listen", "10.1.2.3:8480", &err), 0);
    CHECK(agent_config_mirror_auth(&c));
    CHECK_EQ_INT(agent_config_set(&c, "mirror_auth", "off", &err), 0);
    CHECK(!agent_config_mirror_auth(&c));
    CHECK_EQ_INT(agent_config_set(&c, "mirror_listen", "[::1]:8480", &err), 0);
    CHECK_EQ_INT(agent_config_set(&c, "mirror_auth", "on", &err), 0);
    CHECK(agent_config_mirror_auth(&c));
    CHECK_EQ_INT(agent_config_set(&c, "mirror_auth", "auto", &err), 0);
    CHECK(!agent_config_mirror_auth(&c));
    CHECK_EQ_INT(agent_config_set(&c, "mirror_auth", "ON", &err), -RE_EINVAL);
    agent_config_release(&c);
    re_buf_release(&err);
}

static void config_flags(void)
{
    struct agent_config c;
    struct re_buf err;
    const char *p = write_conf("flags.conf", "[agent]\nmode = flux\ninterval = 30s\n"
                                             "label = a=1\n");
    char *argv[] = { "run", "--config", (char *)p, "--mode", "none", "--label", "b=2",
                     "--state-dir", "/tmp/x", "--apply-timeout", "10s", NULL };
    re_buf_init(&err, 4096);
    agent_config_defaults(&c);
    CHECK_EQ_INT(agent_config_from_args(&c, 11, argv, &err), 0);
    CHECK_EQ_INT(c.mode, AGENT_MODE_NONE);          /* the flag wins */
    CHECK_EQ_INT(c.interval_ms, 30000);             /* from the file */
    CHECK_EQ_INT(c.n_labels, 2);
    CHECK_EQ_STR(c.state_dir, "/tmp/x");
    CHECK_EQ_INT(c.apply_timeout_ms, 10000);
    agent_config_release(&c);

    char *bad[] = { "run", "--no-such-flag", "1", NULL };
    agent_config_defaults(&c);
    re_buf_reset(&err);
    CHECK(agent_config_from_args(&c, 3, bad, &err) < 0);
    CHECK(strstr(err.ptr, "unknown option '--no-such-flag'"));
    agent_config_release(&c);

    char *missing[] = { "run", "--config", "/nonexistent/agent.conf", NULL };
    agent_config_defaults(&c);
    re_buf_reset(&err);
    CHECK(agent_config_from_args(&c, 3, missing, &err) < 0);
    CHECK(strstr(err.ptr, "/nonexistent/agent.conf"));
    agent_config_release(&c);

    char *help[] = { "run", "--help", NULL };
    agent_config_defaults(&c);
    CHECK_EQ_INT(agent_config_from_args(&c, 2, help, &err), 1);
    agent_config_release(&c);

    char *nointerval[] = { "run", "--mode", "none", NULL };
    agent_config_defaults(&c);
    CHECK_EQ_INT(agent_config_from_args(&c, 3, nointerval, &err), 0);
    CHECK(!c.interval_set);
    CHECK_EQ_INT(c.interval_ms, 60000);
    agent_config_release(&c);
    re_buf_release(&err);
}

static void backoff_bounds(void)
{
    struct backoff b;
    backoff_init(&b, 1000, 600000);
    /* Ceilings double up to the cap. */
    uint64_t want[] = { 1000, 2000, 4000, 8000, 16000, 32000, 64000, 128000, 256000, 512000,
                        600000, 600000 };
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        CHECK_EQ_INT(backoff_ceiling(&b), want[i]);
        uint64_t w = backoff_fail(&b, 0, backoff_random());
        CHECK(w <= want[i]);
    }
    /* Extreme random values stay within [0, ceiling]. */
    backoff_reset(&b);
    CHECK_EQ_INT(backoff_ceiling(&b), 1000);
    CHECK_EQ_INT(backoff_fail(&b, 0, 0), 0);
    CHECK(backoff_fail(&b, 0, UINT64_MAX) <= 2000);
    for (int i = 0; i < 100; i++)
        backoff_fail(&b, 0, backoff_random());
    CHECK_EQ_INT(backoff_ceiling(&b), 600000);
    /* Full jitter: many draws spread over the whole range, not lock-step. */
    uint64_t lo = UINT64_MAX, hi = 0;
    for (int i = 0; i < 2000; i++) {
        struct backoff c = b;
        uint64_t w = backoff_fail(&c, 0, backoff_random());
        CHECK(w <= 600000);
        lo = w < lo ? w : lo;
        hi = w > hi ? w : hi;
    }
    CHECK(lo < 60000 && hi > 540000);
    /* Retry-After is honoured, with a spread of at most 20% on top. */
    backoff_reset(&b);
    for (int i = 0; i < 1000; i++) {
        struct backoff c = b;
        uint64_t w = backoff_fail(&c, 30000, backoff_random());
        CHECK(w >= 30000 && w <= 36000);
    }
}

static void interval_jitter(void)
{
    uint64_t lo = UINT64_MAX, hi = 0;
    for (int i = 0; i < 5000; i++) {
        uint64_t w = backoff_jitter_interval(60000, backoff_random());
        CHECK(w >= 48000 && w <= 72000);
        lo = w < lo ? w : lo;
        hi = w > hi ? w : hi;
    }
    CHECK(lo < 50000 && hi > 70000);
    CHECK_EQ_INT(backoff_jitter_interval(60000, 0), 48000);
    CHECK_EQ_INT(backoff_jitter_interval(1000, 400), 1200);
}

static int parse(struct checkin_answer *a, const char *body, struct re_buf *err)
{
    re_buf_reset(err);
    return checkin_parse_answer(a, body, strlen(body), err);
}

static void answer_parsing(void)
{
    struct checkin_answer a;
    struct re_buf err;
    re_buf_init(&err, 1024);
    CHECK_EQ_INT(parse(&a, "{\"branch\":\"main\",\"revision\":"
                           "\"0123456789abcdef0123456789abcdef01234567\",\"interval\":30,"
                           "\"git_url\":\"https://hub:8443/git/s1.git\"}", &err), 0);
    CHECK_EQ_STR(a.branch, "main");
    CHECK_EQ_STR(a.revision, "0123456789abcdef0123456789abcdef01234567");
    CHECK_EQ_INT(a.interval_s, 30);
    CHECK_EQ_STR(a.git_url, "https://hub:8443/git/s1.git");
    CHECK_EQ_INT(parse(&a, "{\"branch\":\"main\",\"revision\":null,\"interval\":60}", &err), 0);
    CHECK_EQ_STR(a.revision, "");
    CHECK_EQ_STR(a.git_url, "");
    /* Garbage, truncation and hostile values. */
    CHECK(parse(&a, "<html>proxy error</html>", &err) < 0);
    CHECK(parse(&a, "{\"branch\":\"main\",\"rev", &err) < 0);
    CHECK(parse(&a, "[1,2]", &err) < 0);
    CHECK(parse(&a, "{\"revision\":\"xyz\"}", &err) < 0);
    CHECK(strstr(err.ptr, "revision"));
    CHECK(parse(&a, "{\"revision\":\"0123456789ABCDEF0123456789abcdef01234567\"}", &err) < 0);
    CHECK(parse(&a, "{\"interval\":0}", &err) < 0);
    CHECK(parse(&a, "{\"interval\":99999999}", &err) < 0);
    CHECK(parse(&a, "{\"interval\":\"60\"}", &err) < 0);
    CHECK(parse(&a, "{\"branch\":\"../../etc\"}", &err) < 0);
    CHECK(parse(&a, "{\"branch\":\"-upload-pack=x\"}", &err) < 0);
    CHECK(parse(&a, "{\"branch\":\"a b\"}", &err) < 0);
    CHECK(parse(&a, "{\"git_url\":\"file:///etc\"}", &err) < 0);
    CHECK(parse(&a, "{\"git_url\":\"https://h/x y\"}", &err) < 0);
    CHECK(parse(&a, "{\"branch\":{\"a\":{\"b\":{\"c\":{\"d\":{\"e\":{\"f\":{\"g\":{\"h\":1}}}}}}}}}",
                &err) < 0);
    re_buf_release(&err);
}

static void request_body(void)
{
    struct agent_config c;
    struct agent_facts f;
    struct agent_status st;
    struct re_buf out, err;
    agent_config_defaults(&c);
    re_buf_init(&err, 1024);
    CHECK_EQ_INT(agent_config_add_label(&c, "region=central", &err), 0);
    CHECK_EQ_INT(agent_config_set(&c, "identity", "edge-123", &err), 0);
    facts_init(&f);
    facts_host(&f, test_tmpdir());
    memset(&st, 0, sizeof(st));
    memcpy(st.applied, "0123456789abcdef0123456789abcdef01234567", 41);
    re_buf_init(&out, 1 << 20);
    CHECK_EQ_INT(checkin_build(&out, &c, &f, &st, 60), 0);
    CHECK(strstr(out.ptr, "\"identity\":\"edge-123\""));
    CHECK(strstr(out.ptr, "\"labels\":{\"region\":\"central\"}"));
    CHECK(strstr(out.ptr, "\"applied_revision\":\"0123456789abcdef0123456789abcdef01234567\""));
    CHECK(strstr(out.ptr, "\"pulled_revision\":null"));
    CHECK(strstr(out.ptr, "\"boot_id\":\""));
    CHECK(strstr(out.ptr, "\"interval\":60"));
    CHECK(f.disk_total_bytes > 0);
    facts_release(&f);
    agent_config_release(&c);
    re_buf_release(&out);
    re_buf_release(&err);
}

static void command_split(void)
{
    char **argv = NULL;
    CHECK_EQ_INT(proc_split(&argv, "kubectl apply -k {dir}", "/s/rev"), 0);
    CHECK_EQ_STR(argv[0], "kubectl");
    CHECK_EQ_STR(argv[3], "/s/rev");
    CHECK(argv[4] == NULL);
    free(argv);
    /* Hub data cannot smuggle shell syntax: it is one word, never a shell. */
    CHECK_EQ_INT(proc_split(&argv, "sh -c 'echo {dir}' --x=\"a b\"", "$(rm -rf /); x"), 0);
    CHECK_EQ_STR(argv[2], "echo $(rm -rf /); x");
    CHECK_EQ_STR(argv[3], "--x=a b");
    free(argv);
    CHECK(proc_split(&argv, "   ", "d") < 0);
    CHECK(proc_split(&argv, "echo 'open", "d") < 0);
}

static void command_timeout(void)
{
    struct proc_result res;
    struct re_buf out;
    char *sleep_argv[] = { "sleep", "10", NULL };
    char *echo_argv[] = { "sh", "-c", "echo hello; echo oops >&2; exit 3", NULL };
    re_buf_init(&out, 4096);
    CHECK_EQ_INT(proc_run(&res, sleep_argv, NULL, 300, 1, &out, NULL), 0);
    CHECK(res.timed_out);
    CHECK_EQ_INT(proc_run(&res, echo_argv, NULL, 5000, 1, &out, NULL), 0);
    CHECK_EQ_INT(res.exit_code, 3);
    CHECK(strstr(out.ptr, "hello") && strstr(out.ptr, "oops"));
    char *none[] = { "/nonexistent/prog", NULL };
    CHECK_EQ_INT(proc_run(&res, none, NULL, 5000, 1, NULL, NULL), 0);
    CHECK_EQ_INT(res.exit_code, 127);
    re_buf_release(&out);
}

TEST_MAIN(T(config_file_ok), T(config_file_errors), T(mirror_auth_setting), T(config_flags), T(backoff_bounds),
          T(interval_jitter), T(answer_parsing), T(request_body), T(command_split),
          T(command_timeout))
