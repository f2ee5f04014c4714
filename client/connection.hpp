// The core of libfdbroker (internal): finds the bootstrap channel, attaches a private channel per
// process, and demultiplexes replies to the threads waiting for them.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>

#include "fdbroker/unique_fd.hpp"
#include "proto/channel.hpp"
#include "proto/wire.hpp"

namespace fdbroker {

// Where the bootstrap channel is to be found. from_environment() reads the real environment; tests
// build one by hand to exercise discovery without touching it.
struct BootstrapSource {
    const char* fd = nullptr;           // FDBROKER_FD: an inherited channel's fd number
    const char* socket = nullptr;       // FDBROKER_SOCKET: a path, or @name for an abstract socket
    const char* runtime_dir = nullptr;  // XDG_RUNTIME_DIR, for the default socket of an unprivileged user
    bool root = false;                  // geteuid() == 0: the default socket is /run/fdbroker/fdbroker.sock

    static BootstrapSource from_environment() noexcept;
};

// Adopts or connects the bootstrap channel. A variable that is set is authoritative: if it names
// nothing usable there is no fallback to the next one. Returns 0 or ENOTCONN.
[[nodiscard]] int open_bootstrap(const BootstrapSource& source, unique_fd& out) noexcept;

// 0 if fd is an AF_UNIX SOCK_SEQPACKET socket; else ENOTSOCK (not a socket) or EPROTOTYPE.
[[nodiscard]] int check_channel(int fd) noexcept;

// What one call brought back.
struct CallResult {
    std::int32_t result = 0;       // the reply's result (>= 0 on success)
    std::size_t payload_size = 0;  // bytes of payload the broker sent (more than fitted, perhaps)
    unique_fd fd;                  // the fd that came with the reply, if any
    // open_many: where the reply's descriptors go, in order (room for one per entry, given by the
    // caller), and how many came.
    std::span<unique_fd> fds;
    std::size_t fd_count = 0;
};

class Connection {
  public:
    // bootstrap may be empty (no broker reachable): every call then fails with ENOTCONN. Throws
    // std::bad_alloc if the buffer replies are read into cannot be had.
    explicit Connection(unique_fd bootstrap);
    ~Connection();
    Connection(const Connection&) = delete;
    Connection& operator=(const Connection&) = delete;

    [[nodiscard]] bool reachable() const noexcept { return static_cast<bool>(bootstrap_); }

    // Sends request (its id is assigned here, its data after its paths) over this process's private
    // channel, attaching one first if needed, and waits for the reply. Up to payload.size() bytes of
    // the reply's payload are copied into payload; an xattr value or list that does not fit is a
    // broken reply, since the broker was told the room. Returns 0, or the errno the call fails with:
    // the broker's (-result), ECONNRESET when the broker went away or misbehaved, ENOTCONN without a
    // bootstrap channel, or a local errno (EMFILE, ENOMEM, ...).
    [[nodiscard]] int call(wire::Request& request, std::span<std::byte> payload, CallResult& out) noexcept;

  private:
    enum class State {
        detached,   // no private channel (never attached, attach failed, or forked)
        attaching,  // one thread is attaching, without mu_; the others wait
        attached,   // private_ is usable
        broken,     // private_ is shut down; closed and detached once no thread uses it
    };

    // A thread waiting inside call(), linked into waiters_ from its own stack. id 0 marks a thread
    // waiting for a state change (attach finished, channel idle) rather than for a reply.
    struct Waiter {
        Waiter* prev = nullptr;
        Waiter* next = nullptr;
        std::uint32_t id = 0;
        wire::Op op{};
        std::span<std::byte> payload;
        CallResult* out = nullptr;
        bool sent = false;  // its request is out: it may be handed the reader role
        bool done = false;  // unlinked, with error (and *out) filled in
        int error = 0;
        // One condition variable per waiter: the reader wakes exactly the owner of a reply, and a
        // child after fork() never touches one that threads which no longer exist were waiting on.
        std::condition_variable cv;
    };

    std::uint32_t take_id() noexcept;
    int ensure_attached_locked(std::unique_lock<std::mutex>& lock, pid_t pid) noexcept;
    int attach(unique_fd& channel) noexcept;
    int send_bootstrap(std::span<const std::byte> frame, int peer) noexcept;
    void read_replies_locked(std::unique_lock<std::mutex>& lock, Waiter& self) noexcept;
    void dispatch_locked(proto::Received& received, std::span<const std::byte> buf) noexcept;
    void wait_for_state_locked(std::unique_lock<std::mutex>& lock) noexcept;
    void notify_state_locked() noexcept;
    void release_user_locked() noexcept;
    void mark_broken_locked() noexcept;
    void forget_channel_locked() noexcept;
    void link(Waiter& w) noexcept;
    void unlink(Waiter& w) noexcept;
    void complete(Waiter& w, int error) noexcept;
    Waiter* find(std::uint32_t id) noexcept;

    // pthread_atfork: every live Connection's mutex is held across fork(), so the child finds
    // consistent state, which it then resets (see reset_in_child).
    static void prepare_fork() noexcept;
    static void parent_after_fork() noexcept;
    static void child_after_fork() noexcept;
    void reset_in_child() noexcept;
    Connection* fork_prev_ = nullptr;
    Connection* fork_next_ = nullptr;

    const unique_fd bootstrap_;
    // Where the reader receives replies: one byte more than the largest legal reply, so that an
    // oversized one shows up as truncated. Only the thread in the reader role uses it, and it is
    // allocated once, since 64 KiB is too much to ask of every caller's stack.
    static constexpr std::size_t kReplyBufferSize = wire::kMaxReplySize + 1;
    const std::unique_ptr<std::byte[]> replies_;
    std::atomic<std::uint32_t> next_id_{1};

    std::mutex mu_;  // guards everything below
    State state_ = State::detached;
    pid_t owner_pid_ = 0;  // the process that attached (or is attaching) private_
    unique_fd private_;
    int users_ = 0;  // threads using private_'s fd number without mu_ (senders, the reader)
    bool reader_active_ = false;
    int state_waiters_ = 0;
    Waiter* waiters_ = nullptr;
};

}  // namespace fdbroker
