/* The few system interfaces Swift cannot call directly: CPUID, variadic ioctl, sockaddr_un. */
#ifndef SEVVM_CSHIMS_H
#define SEVVM_CSHIMS_H

#include <stdint.h>
#include <stddef.h>

/* CPUID leaf/subleaf; returns 0 when the leaf is above the CPU's maximum, 1 otherwise. */
int sevvm_cpuid(uint32_t leaf, uint32_t subleaf, uint32_t *eax, uint32_t *ebx, uint32_t *ecx, uint32_t *edx);

/* ioctl(fd, request, arg) for pointer-argument requests (ioctl is variadic in C). Returns
   the ioctl result; errno is preserved for the caller. */
int sevvm_ioctl_ptr(int fd, unsigned long request, void *arg);
/* ioctl(fd, request, value) for integer-argument requests such as KVM_GET_API_VERSION. */
int sevvm_ioctl_int(int fd, unsigned long request, unsigned long value);

/* Linux struct sev_issue_cmd (include/uapi/linux/psp-sev.h), packed: 16 bytes. */
struct __attribute__((packed)) sevvm_sev_issue_cmd {
    uint32_t cmd;
    uint64_t data;
    uint32_t error;
};
#define SEVVM_SEV_ISSUE_CMD 0xC0105300UL
#define SEVVM_KVM_GET_API_VERSION 0xAE00UL

/* Connects fd (an AF_UNIX stream socket) to path. Paths longer than sun_path (107 bytes) are
   reached through /proc/self/fd/N of an O_PATH descriptor on the socket's folder, so deep
   workspaces work. Returns 0 or -1 with errno set. Non-blocking sockets may return EINPROGRESS. */
int sevvm_unix_connect(int fd, const char *path);
/* Binds fd to path with the same long-path handling. */
int sevvm_unix_bind(int fd, const char *path);
/* The sun_path capacity, including the terminating NUL (108 on Linux). */
size_t sevvm_unix_path_max(void);

/* A non-blocking, close-on-exec eventfd (a thread's wake-up counter), or -1 with errno set. */
int sevvm_wake_fd(void);

/* The offset of the first occurrence of needle in haystack (glibc's memmem), or -1. */
long sevvm_find_bytes(const void *haystack, size_t haystack_length, const void *needle, size_t needle_length);

/* epoll without the packed struct Swift cannot import: create (close-on-exec), watch fd for input,
   and wait, writing up to max ready descriptors to fds. Each returns -1 with errno set on error;
   sevvm_epoll_wait returns the number of ready descriptors. */
int sevvm_epoll_create(void);
int sevvm_epoll_watch(int epoll_fd, int fd);
int sevvm_epoll_wait(int epoll_fd, int *fds, int max, int timeout_ms);

/// Names the calling thread (prctl PR_SET_NAME; the kernel keeps 15 bytes), for ps and perf.
void sevvm_name_thread(const char *name);

/// pipe2 with O_CLOEXEC on both ends (atomic, unlike pipe + fcntl). 0 or -1 with errno.
int sevvm_pipe_cloexec(int fds[2]);

/// Loads the system's libcrypto (OpenSSL 3, else 1.1) once and finds its SHA-384 functions.
/// 1 when they are usable, 0 when not (no libcrypto: callers use swift-crypto instead).
/// Why: on AMD CPUs OpenSSL's AVX2 SHA-512 code is about 2x BoringSSL's, and SNP measurement is
/// mostly SHA-384 of firmware pages. Loaded only by `measure`, so other commands never pay for it.
int sevvm_openssl_sha384_load(void);

/// 1 when an earlier sevvm_openssl_sha384_load succeeded; never loads anything itself.
int sevvm_openssl_sha384_loaded(void);

/// SHA-384 of `length` bytes at `input`, written as 48 bytes to `output`. Only after
/// sevvm_openssl_sha384_load returned 1.
void sevvm_openssl_sha384(const void *input, size_t length, uint8_t *output);

#endif
