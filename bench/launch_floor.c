/* P5's floor: the least any launcher does to run a program in a child and report its exit status
 * (one fork, one exec, one wait), with nothing else: no policy, no confinement, no dynamic loader.
 *
 * usage: launch_floor PROGRAM [ARGS...]   (PROGRAM is a path; no PATH search)
 */
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char** argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s PROGRAM [ARGS...]\n", argv[0]);
        return 2;
    }
    pid_t pid = fork();
    if (pid < 0) return 125;
    if (pid == 0) {
        execv(argv[1], argv + 1);
        _exit(127);
    }
    int status;
    while (waitpid(pid, &status, 0) < 0)
        ;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
