/* fuzz_agent.c - the agent's parsing of what the hub sends it, and of its
 * own state files (which a crash or a person may damage). First byte picks:
 *   0 checkin_parse_answer (POST .../checkin answer)
 *   1 enroll_extract_ca + enroll_check_ca (GET /api/v1/enroll/ca answer)
 *   2 hubclient_error_message (any error answer)
 *   3 agent_status_load (STATE/status.json)
 *   4 agent_state_load (STATE/agent.state) */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include "../../agent/checkin.h"
#include "../../agent/enroll.h"
#include "../../agent/hubclient.h"
#include "../../agent/state.h"
#include "buf.h"
#include "error.h"
#include "fuzz.h"

static bool is_hex40(const char *s)
{
    size_t n = strlen(s);
    if (n != 40)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f') ||
              (s[i] >= 'A' && s[i] <= 'F')))
            return false;
    return true;
}

static void write_file(const char *name, const uint8_t *data, size_t size)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", fuzz_tmpdir(), name);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    FUZZ_CHECK(fd >= 0);
    while (size) {
        ssize_t n = write(fd, data, size);
        FUZZ_CHECK(n > 0);
        data += n;
        size -= (size_t)n;
    }
    close(fd);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_in in = { data, size };
    unsigned mode = fuzz_byte(&in) % 5;
    const char *body = (const char *)in.p;
    struct re_buf err, ca;
    int r;

    re_buf_init(&err, 4096);
    re_buf_init(&ca, 1 << 20);
    switch (mode) {
    case 0: {
        struct checkin_answer a;
        memset(&a, 0x5a, sizeof(a));
        r = checkin_parse_answer(&a, body, in.n, &err);
        if (r == 0) {
            FUZZ_CHECK(a.branch[0] && memchr(a.branch, '\0', sizeof(a.branch)));
            FUZZ_CHECK(a.revision[0] == '\0' || is_hex40(a.revision));
            FUZZ_CHECK(a.interval_s <= CHECKIN_MAX_INTERVAL_S);
            FUZZ_CHECK(memchr(a.git_url, '\0', sizeof(a.git_url)));
            FUZZ_CHECK(!a.git_url[0] || strncmp(a.git_url, "https://", 8) == 0);
            FUZZ_CHECK(!strstr(a.branch, ".."));
        } else {
            FUZZ_CHECK(err.len > 0);
        }
        break;
    }
    case 1:
        r = enroll_extract_ca(&ca, body, in.n);
        if (r == 0) {
            static const char fp[] = "sha256:0123456789abcdef0123456789abcdef"
                                     "0123456789abcdef0123456789abcdef";
            r = enroll_check_ca(ca.ptr ? ca.ptr : "", ca.len, fp, &err);
            FUZZ_CHECK(r < 0);     /* nothing matches a made-up fingerprint */
        }
        break;
    case 2: {
        struct hubclient_resp resp;
        char msg[300];
        hubclient_resp_init(&resp);
        resp.status = 400;
        if (in.n && re_buf_append(&resp.body, in.p, in.n) < 0) {
            hubclient_resp_release(&resp);
            break;
        }
        memset(msg, 0x5a, sizeof(msg));
        hubclient_error_message(msg, sizeof(msg), &resp);
        FUZZ_CHECK(memchr(msg, '\0', sizeof(msg)) && msg[0]);
        for (const char *p = msg; *p; p++)
            FUZZ_CHECK(*p != '\n' || resp.body.len > 0);
        hubclient_resp_release(&resp);
        break;
    }
    case 3: {
        struct agent_status st;
        write_file(AGENT_STATUS_FILE, in.p, in.n);
        FUZZ_CHECK(agent_status_load(&st, fuzz_tmpdir()) == 0);
        FUZZ_CHECK(st.pulled[0] == '\0' || is_hex40(st.pulled));
        FUZZ_CHECK(st.applied[0] == '\0' || is_hex40(st.applied));
        FUZZ_CHECK(memchr(st.apply_result, '\0', sizeof(st.apply_result)));
        break;
    }
    case 4: {
        struct agent_state st;
        memset(&st, 0, sizeof(st));
        write_file(AGENT_STATE_FILE, in.p, in.n);
        r = agent_state_load(&st, fuzz_tmpdir(), &err);
        if (r == 0) {
            FUZZ_CHECK(st.hub_url && strncmp(st.hub_url, "https://", 8) == 0);
            FUZZ_CHECK(st.cluster && st.cluster[0]);
            FUZZ_CHECK(st.key_name && !strchr(st.key_name, '/') && st.key_name[0] != '.');
            FUZZ_CHECK(st.cert_name && !strchr(st.cert_name, '/') && st.cert_name[0] != '.');
        } else {
            FUZZ_CHECK(r == -RE_EPARSE || r == -RE_ENOMEM || r == -RE_ENOENT || r == -RE_ETOOBIG);
        }
        agent_state_release(&st);
        break;
    }
    }
    re_buf_release(&err);
    re_buf_release(&ca);
    return 0;
}
