/* Implementations of the C shims declared in include/CShims.h. */
#define _GNU_SOURCE
#include "CShims.h"

#include <cpuid.h>
#include <dlfcn.h>
#include <pthread.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int sevvm_cpuid(uint32_t leaf, uint32_t subleaf, uint32_t *eax, uint32_t *ebx, uint32_t *ecx, uint32_t *edx) {
    unsigned int a = 0, b = 0, c = 0, d = 0;
    unsigned int max = __get_cpuid_max(leaf & 0x80000000u, NULL);
    if (max == 0 || leaf > max) {
        *eax = *ebx = *ecx = *edx = 0;
        return 0;
    }
    __cpuid_count(leaf, subleaf, a, b, c, d);
    *eax = a; *ebx = b; *ecx = c; *edx = d;
    return 1;
}

int sevvm_ioctl_ptr(int fd, unsigned long request, void *arg) { return ioctl(fd, request, arg); }

int sevvm_ioctl_int(int fd, unsigned long request, unsigned long value) { return ioctl(fd, request, value); }

size_t sevvm_unix_path_max(void) { return sizeof(((struct sockaddr_un *)0)->sun_path); }

typedef int (*sockop)(int, const struct sockaddr *, socklen_t);

static int with_unix_address(int fd, const char *path, sockop op) {
    struct sockaddr_un addr;
    memset(&addr, 0, sizeof addr);
    addr.sun_family = AF_UNIX;
    size_t len = strlen(path);
    if (len < sizeof addr.sun_path) {
        memcpy(addr.sun_path, path, len + 1);
        return op(fd, (struct sockaddr *)&addr, sizeof addr);
    }
    /* Too long: name the folder through a short /proc/self/fd path. */
    char *copy1 = strdup(path), *copy2 = strdup(path);
    if (!copy1 || !copy2) { free(copy1); free(copy2); errno = ENOMEM; return -1; }
    const char *dir = dirname(copy1);
    const char *base = basename(copy2);
    int dirfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (dirfd < 0) { int e = errno; free(copy1); free(copy2); errno = e; return -1; }
    int n = snprintf(addr.sun_path, sizeof addr.sun_path, "/proc/self/fd/%d/%s", dirfd, base);
    int rc;
    if (n < 0 || (size_t)n >= sizeof addr.sun_path) { errno = ENAMETOOLONG; rc = -1; }
    else { rc = op(fd, (struct sockaddr *)&addr, sizeof addr); }
    int e = errno;
    close(dirfd);
    free(copy1); free(copy2);
    errno = e;
    return rc;
}

int sevvm_unix_connect(int fd, const char *path) { return with_unix_address(fd, path, connect); }

int sevvm_unix_bind(int fd, const char *path) { return with_unix_address(fd, path, (sockop)bind); }

int sevvm_wake_fd(void) { return eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK); }

int sevvm_epoll_create(void) { return epoll_create1(EPOLL_CLOEXEC); }

int sevvm_epoll_watch(int epoll_fd, int fd) {
    struct epoll_event event = {.events = EPOLLIN, .data.fd = fd};
    return epoll_ctl(epoll_fd, EPOLL_CTL_ADD, fd, &event);
}

int sevvm_epoll_wait(int epoll_fd, int *fds, int max, int timeout_ms) {
    struct epoll_event events[8];
    if (max > 8) max = 8;
    int count = epoll_wait(epoll_fd, events, max, timeout_ms);
    for (int i = 0; i < count; i++) fds[i] = events[i].data.fd;
    return count;
}

long sevvm_find_bytes(const void *haystack, size_t haystack_length, const void *needle, size_t needle_length) {
    const char *found = memmem(haystack, haystack_length, needle, needle_length);
    return found ? (long)(found - (const char *)haystack) : -1;
}

void sevvm_name_thread(const char *name) {
    prctl(PR_SET_NAME, (unsigned long)name, 0, 0, 0);
}

int sevvm_pipe_cloexec(int fds[2]) {
    return pipe2(fds, O_CLOEXEC);
}

/* OpenSSL's SHA512_CTX is 216 bytes on 64-bit systems; the buffer leaves room and alignment. */
typedef struct { _Alignas(16) unsigned char bytes[512]; } sevvm_sha512_ctx;
typedef int (*sevvm_sha_init)(sevvm_sha512_ctx *);
typedef int (*sevvm_sha_update)(sevvm_sha512_ctx *, const void *, size_t);
typedef int (*sevvm_sha_final)(unsigned char *, sevvm_sha512_ctx *);

static pthread_once_t sevvm_openssl_once = PTHREAD_ONCE_INIT;
static sevvm_sha_init sevvm_sha384_init;
static sevvm_sha_update sevvm_sha384_update;
static sevvm_sha_final sevvm_sha384_final;
static int sevvm_openssl_ready;

static void sevvm_openssl_load_once(void) {
    static const char *const names[] = {"libcrypto.so.3", "libcrypto.so.1.1"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        void *library = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
        if (!library) continue;
        sevvm_sha_init init = (sevvm_sha_init)dlsym(library, "SHA384_Init");
        sevvm_sha_update update = (sevvm_sha_update)dlsym(library, "SHA384_Update");
        sevvm_sha_final final = (sevvm_sha_final)dlsym(library, "SHA384_Final");
        if (init && update && final) {
            /* Known answer: SHA-384("abc") from FIPS 180-2, so a broken library is never used. */
            static const unsigned char expected[8] = {0xcb, 0x00, 0x75, 0x3f, 0x45, 0xa3, 0x5e, 0x8b};
            unsigned char digest[48];
            sevvm_sha512_ctx context;
            if (init(&context) == 1 && update(&context, "abc", 3) == 1 && final(digest, &context) == 1 &&
                memcmp(digest, expected, sizeof expected) == 0) {
                sevvm_sha384_init = init;
                sevvm_sha384_update = update;
                sevvm_sha384_final = final;
                __atomic_store_n(&sevvm_openssl_ready, 1, __ATOMIC_RELEASE);
                return;
            }
        }
        dlclose(library);
    }
}

int sevvm_openssl_sha384_load(void) {
    pthread_once(&sevvm_openssl_once, sevvm_openssl_load_once);
    return __atomic_load_n(&sevvm_openssl_ready, __ATOMIC_ACQUIRE);
}

int sevvm_openssl_sha384_loaded(void) {
    return __atomic_load_n(&sevvm_openssl_ready, __ATOMIC_ACQUIRE);
}

void sevvm_openssl_sha384(const void *input, size_t length, uint8_t *output) {
    sevvm_sha512_ctx context;
    sevvm_sha384_init(&context);
    sevvm_sha384_update(&context, input, length);
    sevvm_sha384_final(output, &context);
}
