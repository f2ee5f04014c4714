// An unmodified Go program for the transparent-mode tests (standard library only, built with
// CGO_ENABLED=0 into a static binary). Several goroutines create, stat, read, rename, link and
// remove files in a work directory and check every result, while CPU-bound goroutines spin in loops
// without function calls and another keeps starting garbage collections: a spinning goroutine can
// only be stopped by asynchronous preemption, a SIGURG sent to its thread, so every collection that
// completes proves that the runtime's preemption signals were delivered meanwhile.
//
//	go_files DIR ROUNDS
//
// prints "ops=N failures=F eintr=E gcs=G" and exits 1 if F or E is not 0; the first few failures are
// described on stderr. E counts raw system calls that failed with EINTR: the runtime installs its
// handlers with SA_RESTART, so natively there are none.
package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

const writers = 4

var (
	ops      atomic.Int64
	failures atomic.Int64
	eintrs   atomic.Int64
	stopping atomic.Bool
)

func fail(format string, args ...any) {
	if failures.Add(1) <= 5 {
		fmt.Fprintf(os.Stderr, format+"\n", args...)
	}
}

// expect counts one operation and checks its error against want (nil: success).
func expect(what string, err, want error) {
	ops.Add(1)
	if errors.Is(err, syscall.EINTR) {
		eintrs.Add(1)
	}
	if want == nil && err != nil {
		fail("%s: %v", what, err)
	} else if want != nil && !errors.Is(err, want) {
		fail("%s: got %v, want %v", what, err, want)
	}
}

// spin keeps a thread busy in a loop that has no preemption point of its own.
func spin(counter *uint64) {
	for n := uint64(0); ; n++ {
		if n&0xffffff == 0 {
			if stopping.Load() {
				*counter = n
				return
			}
		}
	}
}

// round makes one pass over the calls, in pairs that undo each other: a call performed twice or not
// at all makes the next one fail.
func round(dir string, i int) {
	content := []byte("round " + strconv.Itoa(i) + "\n")
	a, b, c := filepath.Join(dir, "a"), filepath.Join(dir, "b"), filepath.Join(dir, "c")
	d, l := filepath.Join(dir, "d"), filepath.Join(dir, "l")

	expect("write "+a, os.WriteFile(a, content, 0o600), nil)
	st, err := os.Stat(a)
	expect("stat "+a, err, nil)
	if err == nil && (st.Size() != int64(len(content)) || !st.Mode().IsRegular()) {
		fail("stat %s: size %d, mode %v", a, st.Size(), st.Mode())
	}
	got, err := os.ReadFile(a)
	expect("read "+a, err, nil)
	if err == nil && !bytes.Equal(got, content) {
		fail("read %s: %q, want %q", a, got, content)
	}
	expect("rename "+a, syscall.Rename(a, b), nil)
	_, err = os.Stat(a)
	expect("stat renamed "+a, err, syscall.ENOENT)

	expect("mkdir "+d, syscall.Mkdir(d, 0o700), nil)
	expect("mkdir again "+d, syscall.Mkdir(d, 0o700), syscall.EEXIST)
	expect("rmdir "+d, syscall.Rmdir(d), nil)

	expect("symlink "+l, syscall.Symlink("b", l), nil)
	target, err := os.Readlink(l)
	expect("readlink "+l, err, nil)
	if err == nil && target != "b" {
		fail("readlink %s: %q", l, target)
	}
	st, err = os.Lstat(l)
	expect("lstat "+l, err, nil)
	if err == nil && st.Mode()&os.ModeSymlink == 0 {
		fail("lstat %s: mode %v", l, st.Mode())
	}
	fd, err := syscall.Open(c, syscall.O_WRONLY|syscall.O_CREAT|syscall.O_EXCL|syscall.O_CLOEXEC, 0o600)
	expect("create "+c, err, nil)
	if err == nil {
		syscall.Close(fd)
	}
	_, err = syscall.Open(c, syscall.O_WRONLY|syscall.O_CREAT|syscall.O_EXCL|syscall.O_CLOEXEC, 0o600)
	expect("create again "+c, err, syscall.EEXIST)

	listing(dir, "b c l")
	for _, name := range []string{b, c, l} {
		expect("unlink "+name, syscall.Unlink(name), nil)
	}
	_, err = os.Open(a)
	expect("open missing "+a, err, syscall.ENOENT)
}

// listing checks the directory holds exactly `want` (names separated by spaces, sorted).
func listing(dir, want string) {
	entries, err := os.ReadDir(dir)
	expect("readdir "+dir, err, nil)
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	if got := strings.Join(names, " "); err == nil && got != want {
		fail("readdir %s: %q, want %q", dir, got, want)
	}
}

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: go_files DIR ROUNDS")
		os.Exit(2)
	}
	rounds, err := strconv.Atoi(os.Args[2])
	if err != nil {
		fmt.Fprintln(os.Stderr, "ROUNDS:", err)
		os.Exit(2)
	}
	// More threads than CPUs, so that the spinners, the collector and the writers all have one.
	runtime.GOMAXPROCS(writers + 4)
	spun := make([]uint64, 2)
	var spinners sync.WaitGroup
	for i := range spun {
		spinners.Add(1)
		go func(i int) { defer spinners.Done(); spin(&spun[i]) }(i)
	}
	gcs := 0
	collected := make(chan struct{})
	go func() {
		for !stopping.Load() {
			runtime.GC()
			gcs++
			time.Sleep(time.Millisecond)
		}
		close(collected)
	}()

	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		dir := filepath.Join(os.Args[1], "w"+strconv.Itoa(w))
		if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < rounds; i++ {
				round(dir, i)
			}
		}()
	}
	wg.Wait()
	stopping.Store(true)
	spinners.Wait()
	<-collected
	fmt.Printf("ops=%d failures=%d eintr=%d gcs=%d\n", ops.Load(), failures.Load(), eintrs.Load(), gcs)
	if failures.Load() != 0 || eintrs.Load() != 0 {
		os.Exit(1)
	}
}
