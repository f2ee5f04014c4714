/* An unmodified program for the transparent-mode tests: it knows nothing of fdbroker and uses plain
 * system calls. Built twice, dynamically and (when the C library's static archive exists) -static.
 *
 *   cat PATH                 print the file, or "PATH: <strerror>" on stderr and exit 1
 *   cloexec PATH             open PATH with and without O_CLOEXEC, print "cloexec=X plain=Y" (FD_CLOEXEC)
 *   race ALLOWED DENIED N    open ALLOWED N times while a second thread keeps rewriting the path buffer
 *                            to DENIED and back (same length); print "opened=A refused=R wrong=W", where
 *                            W counts descriptors that are not ALLOWED's file (by device and inode)
 *   signals DIR N            N times mkdir DIR/s then rmdir it while a timer signal (SA_RESTART)
 *                            keeps arriving; print "failures=F signals=S": a call interrupted after the
 *                            broker performed it and then restarted would fail (EEXIST, ENOENT)
 *   churn PATH ROUNDS        ROUNDS times: fork a child that opens PATH in a loop, SIGKILL it at once,
 *                            reap it; then open PATH once more and print "alive" if that works
 *   readonly PATH LINK       stat PATH and readlink LINK into a read-only page, and into a buffer that
 *                            runs from a writable page into a read-only one; print the four results
 *                            ("ok" or the errno number), as the kernel reports them
 *   opens PATH...            open each PATH read-only (plain open(2)); print one line per PATH:
 *                            "ok DEV:INO" or "err ERRNONAME"
 *   truncate PATH            truncate(2) PATH to nothing, then open it O_RDONLY|O_TRUNC (which truncates
 *                            too); print "ok" or "err ERRNONAME" for each
 *   truncations PATH         try every way to truncate PATH (truncate, open and openat2 with O_TRUNC,
 *                            creat, reopening a read-only descriptor through /proc/self/fd, ftruncate
 *                            and fallocate on one); print "NAME ok" or "NAME ERRNONAME" for each
 *   vfork PATH               map a page at a fixed address and fill it; vfork a child that fstats PATH
 *                            (its result lands in the shared address space) and execs this program as
 *                            "vfork-child PATH", which maps its own page at that address and fstats PATH
 *                            into it; print "child ok" if the result reached the child's page, then
 *                            "parent ok" if the parent's page is untouched (or "... wrong")
 *   call NAME...             make each system call named (pkey_alloc, get_mempolicy, set_mempolicy,
 *                            mbind, times, ptrace) with every argument 0; print "NAME ok" or
 *                            "NAME ERRNONAME" for each
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

/* fstat straight to the kernel: glibc's fstat is newfstatat(fd, "", AT_EMPTY_PATH), which transparent
 * mode brokers; the race loop should measure opens. */
static int raw_fstat(int fd, struct stat* st) {
    return (int)syscall(SYS_fstat, fd, st);
}

static int do_call(int argc, char** argv) {
    static const struct {
        const char* name;
        long nr;
    } calls[] = {{"pkey_alloc", SYS_pkey_alloc},
                 {"get_mempolicy", SYS_get_mempolicy},
                 {"set_mempolicy", SYS_set_mempolicy},
                 {"mbind", SYS_mbind},
                 {"times", SYS_times},
                 {"ptrace", SYS_ptrace}};
    for (int i = 0; i < argc; ++i) {
        long nr = -1;
        for (size_t c = 0; c < sizeof calls / sizeof calls[0]; ++c)
            if (strcmp(calls[c].name, argv[i]) == 0) nr = calls[c].nr;
        if (nr < 0) return 2;
        const long rc = syscall(nr, 0, 0, 0, 0, 0, 0);
        const char* err = strerrorname_np(errno);
        printf("%s %s\n", argv[i], rc >= 0 ? "ok" : err ? err : "?");
        fflush(stdout);
    }
    return 0;
}

static int do_cat(const char* path) {
    int fd = open(path, O_RDONLY);
    if (fd < 0) {
        fprintf(stderr, "%s: %s\n", path, strerror(errno));
        return 1;
    }
    char buf[4096];
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) > 0)
        if (write(1, buf, (size_t)n) != n) return 1;
    close(fd);
    return 0;
}

static int do_cloexec(const char* path) {
    int a = open(path, O_RDONLY | O_CLOEXEC);
    int b = open(path, O_RDONLY);
    if (a < 0 || b < 0) {
        fprintf(stderr, "%s: %s\n", path, strerror(errno));
        return 1;
    }
    printf("cloexec=%d plain=%d\n", (fcntl(a, F_GETFD) & FD_CLOEXEC) ? 1 : 0,
           (fcntl(b, F_GETFD) & FD_CLOEXEC) ? 1 : 0);
    return 0;
}

static char race_path[4096];
static const char *race_allowed, *race_denied;
static atomic_int race_stop;

static void* flipper(void* arg) {
    (void)arg;
    size_t len = strlen(race_allowed);
    while (!atomic_load_explicit(&race_stop, memory_order_relaxed)) {
        /* Byte by byte, so torn mixtures of the two names appear too. */
        for (size_t i = 0; i < len; ++i)
            ((volatile char*)race_path)[i] = race_denied[i];
        for (size_t i = 0; i < len; ++i)
            ((volatile char*)race_path)[i] = race_allowed[i];
    }
    return NULL;
}

static int do_race(const char* allowed, const char* denied, long n) {
    if (strlen(allowed) != strlen(denied) || strlen(allowed) >= sizeof race_path) return 2;
    struct stat want;
    if (stat(allowed, &want) != 0) {
        perror(allowed);
        return 2;
    }
    race_allowed = allowed;
    race_denied = denied;
    strcpy(race_path, allowed);
    pthread_t t;
    if (pthread_create(&t, NULL, flipper, NULL) != 0) return 2;
    long opened = 0, refused = 0, wrong = 0;
    for (long i = 0; i < n; ++i) {
        int fd = open(race_path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            ++refused;
            continue;
        }
        ++opened;
        struct stat st;
        if (raw_fstat(fd, &st) != 0 || st.st_dev != want.st_dev || st.st_ino != want.st_ino) ++wrong;
        close(fd);
    }
    atomic_store(&race_stop, 1);
    pthread_join(t, NULL);
    printf("opened=%ld refused=%ld wrong=%ld\n", opened, refused, wrong);
    return 0;
}

static int do_churn(const char* path, int rounds) {
    for (int r = 0; r < rounds; ++r) {
        pid_t child = fork();
        if (child < 0) return 2;
        if (child == 0) {
            for (;;) {
                int fd = open(path, O_RDONLY);
                if (fd >= 0) close(fd);
            }
        }
        /* Let the child get some opens in flight: a few of our own opens take about as long. */
        for (int i = 0; i < r % 8; ++i) {
            int fd = open(path, O_RDONLY);
            if (fd >= 0) close(fd);
        }
        kill(child, SIGKILL);
        waitpid(child, NULL, 0);
    }
    int fd = open(path, O_RDONLY);
    if (fd < 0) {
        fprintf(stderr, "%s: %s\n", path, strerror(errno));
        return 1;
    }
    close(fd);
    printf("alive\n");
    return 0;
}

static volatile sig_atomic_t signals_seen;
static void on_alarm(int sig) {
    (void)sig;
    ++signals_seen;
}

static int do_signals(const char* dir, long n) {
    char path[4096];
    snprintf(path, sizeof path, "%s/s", dir);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm;
    sa.sa_flags = SA_RESTART;
    sigaction(SIGALRM, &sa, NULL);
    struct itimerval every = {{0, 100}, {0, 100}};
    setitimer(ITIMER_REAL, &every, NULL);
    long failures = 0;
    for (long i = 0; i < n; ++i) {
        if (mkdir(path, 0700) != 0) ++failures;
        if (rmdir(path) != 0) ++failures;
    }
    struct itimerval off = {{0, 0}, {0, 0}};
    setitimer(ITIMER_REAL, &off, NULL);
    printf("failures=%ld signals=%d\n", failures, (int)signals_seen);
    return 0;
}

static const char* result(long rc) {
    static char text[4][16];
    static int next;
    char* out = text[next++ % 4];
    if (rc >= 0)
        snprintf(out, 16, "ok");
    else
        snprintf(out, 16, "%d", errno);
    return out;
}

static int do_readonly(const char* path, const char* link) {
    /* Two pages: the first writable, the second read-only. */
    char* pages = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (pages == MAP_FAILED || mprotect(pages + 4096, 4096, PROT_READ) != 0) return 2;
    char* readonly = pages + 4096;
    char* straddling = readonly - 16;
    const char* a = result(syscall(SYS_newfstatat, AT_FDCWD, path, readonly, 0));
    const char* b = result(syscall(SYS_newfstatat, AT_FDCWD, path, straddling, 0));
    const char* c = result(syscall(SYS_readlink, link, readonly, 64));
    const char* d = result(syscall(SYS_readlink, link, straddling, 64));
    printf("stat=%s stat-straddling=%s readlink=%s readlink-straddling=%s\n", a, b, c, d);
    return 0;
}

static int do_opens(int count, char** paths) {
    for (int i = 0; i < count; ++i) {
        const int fd = open(paths[i], O_RDONLY | O_CLOEXEC);
        struct stat st;
        if (fd < 0) {
            const char* name = strerrorname_np(errno);
            printf("err %s\n", name ? name : "E?");
        } else if (raw_fstat(fd, &st) != 0) {
            printf("err fstat\n");
        } else {
            printf("ok %llu:%llu\n", (unsigned long long)st.st_dev, (unsigned long long)st.st_ino);
        }
        if (fd >= 0) close(fd);
    }
    return 0;
}

static void print_result(int rc) {
    const char* name = rc < 0 ? strerrorname_np(errno) : NULL;
    if (rc < 0)
        printf("err %s\n", name ? name : "E?");
    else
        printf("ok\n");
}

static int do_truncate(const char* path) {
    print_result(truncate(path, 0));
    const int fd = open(path, O_RDONLY | O_TRUNC | O_CLOEXEC);
    print_result(fd);
    if (fd >= 0) close(fd);
    return 0;
}

static void print_named(const char* name, long rc) {
    const char* err = rc < 0 ? strerrorname_np(errno) : NULL;
    printf("%s %s\n", name, rc >= 0 ? "ok" : err ? err : "E?");
}

static void close_if_open(long fd) {
    if (fd >= 0) close((int)fd);
}

static int do_truncations(const char* path) {
    print_named("truncate", truncate(path, 0));
    long fd = open(path, O_RDONLY | O_TRUNC | O_CLOEXEC);
    print_named("open-rdonly-trunc", fd);
    close_if_open(fd);
    fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC);
    print_named("open-wronly-trunc", fd);
    close_if_open(fd);
    struct open_how how = {.flags = O_RDONLY | O_TRUNC | O_CLOEXEC};
    fd = syscall(SYS_openat2, AT_FDCWD, path, &how, sizeof how);
    print_named("openat2-trunc", fd);
    close_if_open(fd);
    fd = creat(path, 0644);
    print_named("creat", fd);
    close_if_open(fd);
    const int ro = open(path, O_RDONLY | O_CLOEXEC);
    if (ro < 0) return 1;
    char proc[64];
    snprintf(proc, sizeof proc, "/proc/self/fd/%d", ro);
    fd = open(proc, O_WRONLY | O_TRUNC | O_CLOEXEC);
    print_named("reopen-trunc", fd);
    close_if_open(fd);
    print_named("ftruncate", ftruncate(ro, 0));
    print_named("fallocate", fallocate(ro, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, 4096));
    close(ro);
    return 0;
}

/* An address both images of the vfork test map a page at: far from where the kernel places anything. */
#define FIXED_PAGE ((void*)0x100000000000UL)

static void* map_fixed_page(void) {
    void* page = mmap(FIXED_PAGE, 4096, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    return page == FIXED_PAGE ? page : NULL;
}

/* After an exec that left the old address space to a vfork parent, a result for the same thread id must
 * reach the new address space, not the old one at the same address. */
static int do_vfork(const char* self, const char* path) {
    unsigned char* page = map_fixed_page();
    const int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (page == NULL || fd < 0) return 2;
    memset(page, 0xaa, 4096);
    static struct stat in_child; /* written by the child into the shared address space */
    const pid_t child = vfork();
    if (child == 0) {
        if (fstat(fd, &in_child) != 0) _exit(3);
        execl(self, self, "vfork-child", path, (char*)NULL);
        _exit(4);
    }
    int status = 0;
    if (child < 0 || waitpid(child, &status, 0) != child) return 2;
    int untouched = 1;
    for (int i = 0; i < 4096; ++i)
        untouched &= page[i] == 0xaa;
    printf("parent %s\n", untouched ? "ok" : "wrong");
    return untouched && WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}

static int do_vfork_child(const char* path) {
    struct stat* st = map_fixed_page();
    struct stat real;
    const int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (st == NULL || fd < 0 || raw_fstat(fd, &real) != 0 || fstat(fd, st) != 0) return 2;
    const int same = st->st_dev == real.st_dev && st->st_ino == real.st_ino;
    printf("child %s\n", same ? "ok" : "wrong");
    return same ? 0 : 1;
}

int main(int argc, char** argv) {
    if (argc == 3 && strcmp(argv[1], "cat") == 0) return do_cat(argv[2]);
    if (argc == 3 && strcmp(argv[1], "cloexec") == 0) return do_cloexec(argv[2]);
    if (argc == 5 && strcmp(argv[1], "race") == 0) return do_race(argv[2], argv[3], atol(argv[4]));
    if (argc == 4 && strcmp(argv[1], "signals") == 0) return do_signals(argv[2], atol(argv[3]));
    if (argc == 4 && strcmp(argv[1], "churn") == 0) return do_churn(argv[2], atoi(argv[3]));
    if (argc == 4 && strcmp(argv[1], "readonly") == 0) return do_readonly(argv[2], argv[3]);
    if (argc == 3 && strcmp(argv[1], "vfork") == 0) return do_vfork(argv[0], argv[2]);
    if (argc == 3 && strcmp(argv[1], "vfork-child") == 0) return do_vfork_child(argv[2]);
    if (argc >= 2 && strcmp(argv[1], "opens") == 0) return do_opens(argc - 2, argv + 2);
    if (argc == 3 && strcmp(argv[1], "truncate") == 0) return do_truncate(argv[2]);
    if (argc == 3 && strcmp(argv[1], "truncations") == 0) return do_truncations(argv[2]);
    if (argc >= 3 && strcmp(argv[1], "call") == 0) return do_call(argc - 2, argv + 2);
    fprintf(stderr, "usage: see transparent_worker.c\n");
    return 2;
}
