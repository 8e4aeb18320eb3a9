/* The pod sandbox's pause process: hold the pod's namespaces open, reap orphaned zombies, exit on
 * SIGTERM/SIGINT. Built static (gcc -static) so the pause image is this one file and nothing else.
 * Same job as Kubernetes' build/pause/linux/pause.c; written here so no registry is needed. */
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

static void on_term(int sig) { (void)sig; _exit(0); }

static void on_child(int sig) {
  (void)sig;
  while (waitpid(-1, NULL, WNOHANG) > 0) {
  }
}

int main(void) {
  struct sigaction term = {.sa_handler = on_term}, child = {.sa_handler = on_child, .sa_flags = SA_NOCLDSTOP};
  if (getpid() != 1) { /* warn (upstream refuses) so a stray run outside a sandbox is obvious */
    write(2, "pause: should be PID 1\n", 23);
  }
  if (sigaction(SIGINT, &term, NULL) < 0 || sigaction(SIGTERM, &term, NULL) < 0 ||
      sigaction(SIGCHLD, &child, NULL) < 0) {
    return 1;
  }
  for (;;) {
    pause();
  }
  return 0;
}
