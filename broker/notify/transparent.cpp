#include "broker/notify/transparent.hpp"

#include <fcntl.h>

#include <cerrno>
#include <new>
#include <string>

#include "broker/notify/decode_notification.hpp"
#include "broker/notify/notify_call.hpp"
#include "broker/notify/path_form.hpp"
#include "broker/notify/pending_signal.hpp"
#include "broker/ops/pending_connect.hpp"

namespace fdbroker::broker {

// How often a caller waiting for a connect is checked for a signal to handle.
constexpr std::chrono::milliseconds kSignalCheck{20};

// A connect on the caller's blocking socket that is still in progress: the notification is answered
// when it ends, and other workers and calls are served meanwhile.
class Transparent::Connecting final : public PendingConnect::Waiter {
  public:
    Connecting(Transparent& owner, const NotifyCall& call, Caller caller, std::string address,
               const SocketVerdict& verdict, int restore_flags, unique_fd socket) noexcept
        : owner_(owner),
          // Its own reference to the listener: the answer may come after the supervisor let go of it.
          notify_(::fcntl(call.notify(), F_DUPFD_CLOEXEC, 0)),
          id_(call.id()),
          tid_(call.tid()),
          caller_(caller),
          address_(std::move(address)),
          rule_(verdict.rule),
          restore_flags_(restore_flags),
          connect_(owner.loop_, std::move(socket), *this) {}

    bool start(std::chrono::milliseconds timeout) noexcept {
        return notify_ && connect_.start(timeout, kSignalCheck);
    }

    void connect_done(int error, unique_fd socket) noexcept override {
        ::fcntl(socket.get(), F_SETFL, restore_flags_);
        const SocketVerdict verdict{true, rule_, nullptr, error, std::nullopt};
        owner_.audit_.record(Performer::socket_record(caller_, owner_.performer_.profile().name(), "connect",
                                                      address_, verdict));
        // Interrupted: answered as the kernel's own wait is, so the handler's SA_RESTART decides between
        // EINTR and the connect made again (which finds it in progress and waits on).
        send_notify_reply(notify_.get(), id_, error == EINTR ? kRestartSys : error);
        owner_.connect_ended(*this);
    }

    // The caller has a signal to handle (Ctrl-C in a program that catches SIGINT): natively it would
    // end the connect's wait at once.
    bool interrupted() noexcept override { return interrupting_signal_pending(tid_); }

  private:
    Transparent& owner_;
    unique_fd notify_;
    std::uint64_t id_;
    pid_t tid_;
    Caller caller_;
    std::string address_;
    const policy::AddressRule* rule_;
    int restore_flags_;
    PendingConnect connect_;
};

Transparent::Transparent(EventLoop& loop, const policy::Profile& profile, std::optional<FileOwner> owner,
                         Audit& audit, uid_t worker_uid)
    : loop_(loop),
      performer_(profile, owner, Performer::Mode::transparent),
      audit_(audit),
      uid_(worker_uid) {}

Transparent::~Transparent() = default;

void Transparent::answer(int notify, const seccomp_notif& req) noexcept {
    NotifyCall call(notify, req, &address_spaces_);
    // Everything from reading the caller's memory (which a file system may back) to performing the
    // call may wait: done with the loop released; what touches shared state takes it back (record()).
    loop_.blocking([&] { answer_call(call); });
}

void Transparent::record(const AuditRecord& audit) noexcept {
    loop_.locked([&] { audit_.record(audit); });
}

void Transparent::answer_call(NotifyCall& call) noexcept {
    Decoded decoded;
    decode_notification(call.system_call(), call, decoded);
    if (decoded.error != 0) return call.reply(decoded.error);
    // Arguments read: confirm the caller before deciding on them.
    if (!call.valid()) return;
    if (const int err = apply_path_form(decoded, performer_, {call.tid(), uid_}); err != 0)
        return call.reply(err);
    Outcome out;
    performer_.perform({call.tid(), uid_}, decoded.operation, out);
    if (out.pending) return wait_for_connect(call, decoded, out);
    if (out.audited) record(out.audit);
    reply(call, decoded, out);
}

void Transparent::reply(NotifyCall& call, const Decoded& decoded, const Outcome& out) noexcept {
    if (out.error != 0) return call.reply(out.error);
    int error = 0;
    switch (out.carries) {
        case Outcome::Carries::fd:
            return call.reply_fd(out.fd.get(), decoded.cloexec);
        case Outcome::Carries::stat:
            error = call.write_bytes(decoded.result_buffer, &out.st, sizeof out.st);
            break;
        case Outcome::Carries::statx:
            error = call.write_bytes(decoded.result_buffer, &out.stx, sizeof out.stx);
            break;
        case Outcome::Carries::link:
            error = call.write_bytes(decoded.result_buffer, out.link, static_cast<std::size_t>(out.value));
            break;
        case Outcome::Carries::data:
            error =
                call.write_bytes(decoded.result_buffer, out.data.data(), static_cast<std::size_t>(out.value));
            break;
        case Outcome::Carries::nothing:
            break;
    }
    call.reply(error, error == 0 ? out.value : 0);
}

// Hands a connect in progress to the event loop; if it cannot wait, the caller gets EAGAIN (out of
// descriptors) or ENOMEM, with its socket's flags put back.
void Transparent::wait_for_connect(NotifyCall& call, const Decoded& decoded, Outcome& out) noexcept {
    const auto* connect = std::get_if<op::Connect>(&decoded.operation);
    if (connect == nullptr) return call.reply(EINVAL);  // only a connect is ever pending
    const std::string_view address = out.socket.reached ? out.socket.reached->view() : connect->address;
    const Caller caller{call.tid(), uid_};
    const bool waiting = loop_.locked([&] {
        if (!out.fd) return false;
        try {
            auto waiter = std::make_unique<Connecting>(*this, call, caller, std::string(address), out.socket,
                                                       out.restore_flags, std::move(out.fd));
            if (!waiter->start(performer_.profile().connect_timeout())) return false;
            connecting_.push_back(std::move(waiter));
            return true;
        } catch (const std::bad_alloc&) {
            errno = ENOMEM;
            return false;
        }
    });
    if (waiting) return;
    out.socket.error = errno == EMFILE || errno == ENFILE ? EAGAIN : ENOMEM;
    ::fcntl(connect->socket.get(), F_SETFL, out.restore_flags);
    record(Performer::socket_record(caller, performer_.profile().name(), "connect", address, out.socket));
    call.reply(out.socket.error);
}

void Transparent::connect_ended(Connecting& connecting) noexcept {
    // Called from the connect's own event: the loop destroys it once the turn is over.
    loop_.retire_from(connecting_, connecting);
}

}  // namespace fdbroker::broker
