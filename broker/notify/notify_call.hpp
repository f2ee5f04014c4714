// One seccomp notification being answered: the caller (its thread id, its memory, its descriptors and
// what /proc says about it, as decode_notification.hpp reads them) and the reply, which is transparent
// mode's reply step: a descriptor installed atomically with the answer (SECCOMP_IOCTL_NOTIF_ADDFD with
// SECCOMP_ADDFD_FLAG_SEND), a result written into the caller's buffer, or an errno. Never
// SECCOMP_USER_NOTIF_FLAG_CONTINUE.
#pragma once

#include <linux/seccomp.h>
#include <sys/types.h>

#include <cstdint>

#include "broker/notify/decode_notification.hpp"
#include "broker/notify/worker_memory.hpp"

namespace fdbroker::broker {

class NotifyCall final : public CallerView {
  public:
    // The notification is copied: the supervisor's buffer receives the next one while this call may
    // still be waiting for a file system.
    // `kept`, when given, keeps the descriptors results are written through for the thread's next call.
    NotifyCall(int notify, const seccomp_notif& req, AddressSpaces* kept = nullptr) noexcept;

    [[nodiscard]] SystemCall system_call() const noexcept;
    [[nodiscard]] pid_t tid() const noexcept { return tid_; }
    [[nodiscard]] int notify() const noexcept { return notify_; }
    [[nodiscard]] std::uint64_t id() const noexcept { return req_.id; }

    // Whether the notification is still pending: the thread id still names the thread that made it,
    // so what was read through /proc/TID is the caller's.
    [[nodiscard]] bool valid() const noexcept;

    int read_string(std::uint64_t addr, op::PathBuffer& out) noexcept override;
    int read_bytes(std::uint64_t addr, void* buf, std::size_t size) noexcept override;
    int directory(int dirfd, op::PathBuffer& out) noexcept override;
    int descriptor_link(int fd, op::PathBuffer& out) noexcept override;
    [[nodiscard]] mode_t umask() noexcept override;
    int take_fd(int fd, unique_fd& out) noexcept override;

    // Writes a result into the caller's buffer: EFAULT where the caller could not write itself.
    int write_bytes(std::uint64_t addr, const void* buf, std::size_t size) noexcept;
    void reply(int error, std::int64_t value = 0) noexcept;
    // Installs fd in the caller and answers with its number, atomically: if the caller is gone the
    // descriptor is never installed.
    void reply_fd(int fd, bool cloexec) noexcept;

  private:
    int notify_;
    const seccomp_notif req_;
    pid_t tid_;
    WorkerMemory memory_;
};

// Answers notification `id` on listener `notify`: -error, or `value` when error is 0.
void send_notify_reply(int notify, std::uint64_t id, int error, std::int64_t value = 0) noexcept;

}  // namespace fdbroker::broker
