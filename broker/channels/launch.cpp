#include "broker/channels/launch.hpp"

#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "broker/channels/broker.hpp"
#include "broker/core/log.hpp"
#include "proto/channel.hpp"
#include "sandbox/landlock.hpp"

namespace fdbroker::broker {

namespace {

constexpr int kSetupFailed = 125;

}  // namespace

Launched launch_worker(const Launch& launch) {
    Launched out;
    int pair[2];
    if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) != 0) {
        out.worker.exit_code = kSetupFailed;
        out.worker.error = std::string("socketpair: ") + std::strerror(errno);
        return out;
    }
    out.channel.reset(pair[0]);
    const unique_fd worker_end(pair[1]);
    // Before the worker exists: a message sent while neither end asks for credentials arrives without
    // them (pid 0), and a worker that attaches at once would be thrown out for it.
    proto::enable_credentials(out.channel.get(), /*want_pidfd=*/true);

    const policy::Profile& profile = launch.profile;
    const sandbox::Identity identity = sandbox::Identity::for_worker(profile.uid(), profile.gid(), out.note);
    const unique_fd cgroup = launch.containment.cgroup_for(launch.cgroup);
    out.uid = identity.uid();
    if (identity.switches()) out.owner = FileOwner{identity.uid(), identity.gid()};
    std::function<std::string()> meanwhile;
    if (launch.meanwhile) meanwhile = [&] { return launch.meanwhile(out); };
    out.worker = sandbox::spawn({.argv = launch.argv,
                                 .channel = worker_end.get(),
                                 .identity = identity,
                                 .confinement = profile.confinement(),
                                 .output = launch.output,
                                 .brokered = launch.brokered,
                                 .cgroup = cgroup ? cgroup.get() : -1,
                                 .die_with_broker = launch.die_with_broker,
                                 .meanwhile = std::move(meanwhile)});
    out.in_cgroup = static_cast<bool>(cgroup);
    return out;
}

void announce_kernel_reads(const Launched& launched, const policy::Profile& profile, Audit& audit) {
    const policy::Confinement& confinement = profile.confinement();
    if (confinement.reads != policy::ReadTier::kernel || launched.worker.pid < 0) return;
    AuditRecord record;
    record.pid = launched.worker.pid;
    record.uid = launched.uid;
    record.profile = profile.name();
    record.op = "kernel_reads";
    record.allowed = true;
    audit.record(record);
    if (confinement.stat == policy::StatTier::kernel) {
        record.op = "kernel_stat";
        audit.record(record);
    }
    // Landlock bound each grant to the inode there when the worker started: one absent then grants
    // nothing to this worker. Not said of the built-in runtime paths: the worker's runtime grants hold
    // them already (following symbolic links, to files the include grants too), and every system lacks
    // some of them.
    const std::vector<std::string>& builtin = policy::default_runtime();
    for (const policy::KernelRead& grant : confinement.kernel_reads) {
        if (confinement.runtime_builtin &&
            std::find(builtin.begin(), builtin.end(), grant.path) != builtin.end())
            continue;
        if (const char* why = sandbox::kernel_read_missing(grant))
            log("profile '%s': reads = \"kernel\" grants nothing for '%s' to worker %d: %s",
                profile.name().c_str(), grant.path.c_str(), static_cast<int>(launched.worker.pid), why);
    }
}

bool serve_worker(Broker& broker, Launched& launched) {
    return broker.add_bootstrap(std::move(launched.channel),
                                {launched.uid, ProcessTree(launched.worker.pid, ::getpid())});
}

}  // namespace fdbroker::broker
