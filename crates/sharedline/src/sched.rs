//! Scheduling policy of the server's own helper threads.

/// Put the calling thread under `SCHED_BATCH`: the same share of the CPU as
/// any thread, but waking it does not preempt the thread that woke it.
///
/// The store writer runs this. On a server with one core, each batch handed
/// to the writer used to switch to it at once, so it committed one small
/// group per hand-over while the engine waited; now the engine finishes its
/// round, and the input already waiting, first, and the writer commits one
/// larger group (over TCP, seize-fanout went from 9.7-10.1k to 12.9-14.6k
/// requests/s, see BENCHMARKS.md). Returns false where the policy cannot be
/// set; the thread then runs as before, only slower.
pub(crate) fn batch_policy_for_this_thread() -> bool {
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: `sched_setscheduler` reads one `sched_param` through the
    // pointer, which points to a live local for the duration of the call;
    // pid 0 is the calling thread, and the call has no other effect on
    // memory.
    let rc = unsafe { libc::sched_setscheduler(0, libc::SCHED_BATCH, &param) };
    rc == 0
}

#[cfg(test)]
mod tests {
    /// This thread's id (the last part of `/proc/thread-self`).
    fn own_tid() -> i32 {
        std::fs::read_link("/proc/thread-self")
            .expect("thread-self")
            .file_name()
            .expect("tid")
            .to_string_lossy()
            .parse()
            .expect("numeric tid")
    }

    /// The scheduling policy of a thread of this process, as Linux numbers it.
    fn policy_of(tid: i32) -> String {
        let stat =
            std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")).expect("task stat");
        // Field 41 is the policy; the fields after the `)` of the name start at 3.
        let after = &stat[stat.rfind(')').expect("comm closes") + 2..];
        after
            .split(' ')
            .nth(41 - 3)
            .expect("policy field")
            .to_string()
    }

    #[test]
    fn the_calling_thread_gets_sched_batch_and_others_keep_theirs() {
        let (tid, set, policy) = std::thread::spawn(|| {
            let tid = own_tid();
            let set = super::batch_policy_for_this_thread();
            (tid, set, policy_of(tid))
        })
        .join()
        .expect("thread");
        assert!(set, "SCHED_BATCH could not be set");
        // SCHED_BATCH is 3.
        assert_eq!(policy, "3", "policy of thread {tid}");
        assert_eq!(
            policy_of(own_tid()),
            "0",
            "the caller's thread is unchanged"
        );
    }
}
