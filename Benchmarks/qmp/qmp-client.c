/* qmp-client: the minimal C QMP client the QMP benchmark compares sevvm against.
 *
 *   qmp-client SOCKET bench N       N sequential query-status round trips; prints commands per second
 *   qmp-client SOCKET bench-id N    the same with a unique "id" in every command (for context)
 *   qmp-client SOCKET dump CMD      prints the raw reply line of CMD (e.g. query-qmp-schema)
 *
 * It does the least a correct client must: one write per command, reads until the reply's
 * CRLF, skips events. No JSON parsing at all, so it bounds what any client can reach.
 *
 * Why bench-id: QEMU reads its QMP socket one byte per main-loop turn, so every byte of a
 * request costs QEMU time; an "id" member makes query-status about a third slower in QEMU itself.
 * bench-id shows that cost (qemu.qmp pays it on every command; sevvm only when commands overlap). */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static char buf[1 << 20];
static size_t have;

/* Returns the next CRLF-terminated message (NUL-terminated in place) or exits on EOF/error. */
static char *next_line(int fd, size_t *consumed) {
    for (;;) {
        char *end = memmem(buf, have, "\r\n", 2);
        if (end) {
            *end = '\0';
            *consumed = (size_t)(end - buf) + 2;
            return buf;
        }
        if (have == sizeof buf) { fprintf(stderr, "qmp-client: message too large\n"); exit(1); }
        ssize_t n = read(fd, buf + have, sizeof buf - have);
        if (n <= 0) { fprintf(stderr, "qmp-client: connection closed\n"); exit(1); }
        have += (size_t)n;
    }
}

static void drop(size_t consumed) {
    memmove(buf, buf + consumed, have - consumed);
    have -= consumed;
}

/* Sends cmd and returns the reply line (events are skipped); valid until the next call. */
static char *roundtrip(int fd, const char *cmd, size_t len, size_t *consumed) {
    if (write(fd, cmd, len) != (ssize_t)len) { perror("qmp-client: write"); exit(1); }
    for (;;) {
        char *line = next_line(fd, consumed);
        if (strncmp(line, "{\"timestamp\"", 12) != 0) return line;
        drop(*consumed);
    }
}

int main(int argc, char **argv) {
    if (argc != 4) { fprintf(stderr, "usage: qmp-client SOCKET bench N | SOCKET dump COMMAND\n"); return 2; }
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    if (strlen(argv[1]) >= sizeof addr.sun_path) { fprintf(stderr, "qmp-client: socket path too long\n"); return 1; }
    strcpy(addr.sun_path, argv[1]);
    if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) { perror("qmp-client: connect"); return 1; }
    size_t consumed;
    next_line(fd, &consumed); /* greeting */
    drop(consumed);
    static const char caps[] = "{\"execute\":\"qmp_capabilities\"}";
    roundtrip(fd, caps, sizeof caps - 1, &consumed);
    drop(consumed);

    if (strcmp(argv[2], "dump") == 0) {
        char cmd[256];
        int len = snprintf(cmd, sizeof cmd, "{\"execute\":\"%s\"}", argv[3]);
        char *line = roundtrip(fd, cmd, (size_t)len, &consumed);
        fwrite(line, 1, strlen(line), stdout);
        fputs("\r\n", stdout);
        return 0;
    }
    if (strcmp(argv[2], "bench") != 0 && strcmp(argv[2], "bench-id") != 0) {
        fprintf(stderr, "qmp-client: unknown mode %s\n", argv[2]);
        return 2;
    }
    int with_id = strcmp(argv[2], "bench-id") == 0;
    struct timespec t0 = {0}, t1;
    long n = atol(argv[3]);
    long next_id = 0;
    char status[64];
    for (long i = -200; i < n; i++) {
        if (i == 0) clock_gettime(CLOCK_MONOTONIC, &t0);
        int len = with_id ? snprintf(status, sizeof status, "{\"execute\":\"query-status\",\"id\":%ld}", ++next_id)
                          : snprintf(status, sizeof status, "{\"execute\":\"query-status\"}");
        char *line = roundtrip(fd, status, (size_t)len, &consumed);
        if (strncmp(line, "{\"return\"", 9) != 0) { fprintf(stderr, "qmp-client: unexpected reply %s\n", line); return 1; }
        drop(consumed);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double seconds = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    printf("%.0f\n", (double)n / seconds);
    return 0;
}
