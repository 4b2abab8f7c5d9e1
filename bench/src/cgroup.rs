//! Each process of a benchmark in a CPU scheduling group of its own, as a container runtime
//! (docker compose, Kubernetes) or systemd puts every service in production.
//!
//! Why it matters: started from one shell, Redis, the services and wrk all share one group, and
//! the scheduler divides the CPU thread by thread. On a saturated 2-core machine that is a run
//! queue of 7 to 19 threads, and a waking Redis waited behind them up to 1.4 s to answer a PING
//! (measured with a SCHED_FIFO probe, while Redis itself recorded no slow command): long enough
//! for every verifier to fail closed. With a group per process, as deployed, the same load kept
//! Redis's worst PING under 20 ms. Benchmarking without it would measure a topology nobody runs.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

/// Where the CPU controller lives: cgroup v1 (`/sys/fs/cgroup/cpu`) or v2 (`/sys/fs/cgroup`).
fn root() -> anyhow::Result<PathBuf> {
    let v1 = Path::new("/sys/fs/cgroup/cpu");
    if v1.join("cgroup.procs").exists() {
        return Ok(v1.join("tokenauth-bench"));
    }
    let v2 = Path::new("/sys/fs/cgroup");
    let controllers = std::fs::read_to_string(v2.join("cgroup.controllers")).unwrap_or_default();
    if controllers.split_whitespace().any(|c| c == "cpu") {
        let group = v2.join("tokenauth-bench");
        std::fs::create_dir_all(&group)?;
        // Children of a v2 group get the CPU controller only when their parent hands it down.
        std::fs::write(v2.join("cgroup.subtree_control"), "+cpu")?;
        std::fs::write(group.join("cgroup.subtree_control"), "+cpu")?;
        return Ok(group);
    }
    bail!("no cgroup CPU controller found (neither /sys/fs/cgroup/cpu nor cgroup v2 with cpu)")
}

/// A group holding one process; removed when dropped (after its process has ended).
#[derive(Debug)]
pub struct Group(PathBuf);

impl Group {
    /// Creates the group `name` and moves `pid` into it.
    pub fn of(pid: u32, name: &str) -> anyhow::Result<Group> {
        let dir = root()
            .context(
                "benchmarks run each process in a CPU group of its own, as containers do; \
                 run them as root on a machine with the cgroup CPU controller",
            )?
            .join(name);
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        std::fs::write(dir.join("cgroup.procs"), pid.to_string())
            .with_context(|| format!("moving {pid} into {}", dir.display()))?;
        Ok(Group(dir))
    }

    /// The file a process writes its own pid to, to join this group.
    pub fn procs_file(&self) -> PathBuf {
        self.0.join("cgroup.procs")
    }

    /// A group for a command about to start: it joins before it runs (see [`Group::wrap`]).
    pub fn empty(name: &str) -> anyhow::Result<Group> {
        let dir = root()?.join(name);
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        Ok(Group(dir))
    }

    /// `program args…` run through `sh` so that it is in this group from its first instruction.
    pub fn wrap(&self, program: &str) -> std::process::Command {
        let mut cmd = std::process::Command::new("sh");
        cmd.arg("-c")
            .arg("echo $$ > \"$0\" && exec \"$@\"")
            .arg(self.procs_file())
            .arg(program);
        cmd
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        // Fails while a process is still inside; the group is then left for the next run.
        let _ = std::fs::remove_dir(&self.0);
    }
}
