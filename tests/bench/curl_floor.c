/* curl_floor.c - the agent RSS baseline of `make bench`: the smallest
 * client that does what the agent's check-in does with Debian's libcurl
 * (global init, one mutual-TLS POST to the hub, the connection kept), then
 * prints its VmRSS in kB. The agent cannot be smaller than this floor plus
 * libgit2, so agent.sh sets the agent's RSS against it.
 *   curl_floor URL CA CERT KEY */
#include <stdio.h>
#include <string.h>
#include <curl/curl.h>

static size_t discard(char *p, size_t size, size_t n, void *ud)
{
    (void)p;
    (void)ud;
    return size * n;
}

static long vm_rss_kb(void)
{
    char line[256];
    long kb = -1;
    FILE *f = fopen("/proc/self/status", "r");
    if (!f)
        return -1;
    while (fgets(line, sizeof(line), f))
        if (sscanf(line, "VmRSS: %ld kB", &kb) == 1)
            break;
    fclose(f);
    return kb;
}

int main(int argc, char **argv)
{
    long code = 0;
    if (argc != 5) {
        fprintf(stderr, "usage: curl_floor URL CA CERT KEY\n");
        return 2;
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return 1;
    CURL *h = curl_easy_init();
    if (!h)
        return 1;
    curl_easy_setopt(h, CURLOPT_URL, argv[1]);
    curl_easy_setopt(h, CURLOPT_CAINFO, argv[2]);
    curl_easy_setopt(h, CURLOPT_SSLCERT, argv[3]);
    curl_easy_setopt(h, CURLOPT_SSLKEY, argv[4]);
    curl_easy_setopt(h, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, "{\"agent_version\":\"floor\"}");
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard);
    for (int i = 0; i < 2; i++) {           /* the second one resumes, as the agent's do */
        CURLcode cc = curl_easy_perform(h);
        if (cc != CURLE_OK) {
            fprintf(stderr, "curl_floor: %s\n", curl_easy_strerror(cc));
            return 1;
        }
    }
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
    printf("%ld %ld\n", vm_rss_kb(), code);
    curl_easy_cleanup(h);
    curl_global_cleanup();
    return 0;
}
