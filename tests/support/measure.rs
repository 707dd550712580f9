//! What the benchmark measures with, outside the process it measures: figures with their samples,
//! a process's CPU time and peak memory, and the machine the figures were taken on.

use std::time::Duration;

/// One figure's samples.
pub struct Figure {
    pub name: String,
    pub unit: &'static str,
    pub values: Vec<f64>,
    pub target: &'static str,
}

impl Figure {
    pub fn new(name: impl Into<String>, unit: &'static str, target: &'static str) -> Self {
        Self {
            name: name.into(),
            unit,
            values: Vec::new(),
            target,
        }
    }

    pub fn median(&self) -> f64 {
        let mut v = self.values.clone();
        v.sort_by(f64::total_cmp);
        let n = v.len();
        if n == 0 {
            return f64::NAN;
        }
        if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2.0
        }
    }

    pub fn min(&self) -> f64 {
        self.values.iter().copied().fold(f64::INFINITY, f64::min)
    }

    pub fn max(&self) -> f64 {
        self.values.iter().copied().fold(f64::NEG_INFINITY, f64::max)
    }

    pub fn shown(&self, v: f64) -> String {
        match self.unit {
            "ms" if v < 10.0 => format!("{v:.2}"),
            "ms" | "MB" | "s" => format!("{v:.1}"),
            _ => format!("{v:.0}"),
        }
    }

    /// `median unit (min–max)`.
    pub fn spread(&self) -> String {
        let unit = if self.unit.is_empty() {
            String::new()
        } else {
            format!(" {}", self.unit)
        };
        format!(
            "{}{unit} ({}–{})",
            self.shown(self.median()),
            self.shown(self.min()),
            self.shown(self.max())
        )
    }

    pub fn row(&self) -> String {
        format!(
            "| {} | {} {} | {} | {} | {} | {} |",
            self.name,
            self.shown(self.median()),
            self.unit,
            self.shown(self.min()),
            self.shown(self.max()),
            self.values.len(),
            self.target
        )
    }
}

/// Figures by name, in the order first added.
#[derive(Default)]
pub struct Figures {
    pub figures: Vec<Figure>,
}

impl Figures {
    pub fn add(&mut self, name: String, unit: &'static str, target: &'static str, value: f64) {
        match self.figures.iter_mut().find(|f| f.name == name) {
            Some(f) => f.values.push(value),
            None => {
                let mut f = Figure::new(name, unit, target);
                f.values.push(value);
                self.figures.push(f);
            }
        }
    }

    pub fn get(&self, name: &str) -> Option<&Figure> {
        self.figures.iter().find(|f| f.name == name)
    }
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// CPU time (user + system, every thread, exited ones included) the process has used so far.
pub fn cpu(pid: u32) -> Duration {
    let mut clock: libc::clockid_t = 0;
    let mut time = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: both pointers are to locals that outlive the calls.
    let ok = unsafe {
        libc::clock_getcpuclockid(pid as libc::pid_t, &mut clock) == 0 && libc::clock_gettime(clock, &mut time) == 0
    };
    assert!(ok, "cannot read the CPU clock of process {pid}");
    Duration::new(time.tv_sec as u64, time.tv_nsec as u32)
}

/// The process's peak resident set so far (VmHWM), in MB.
pub fn peak_rss_mb(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/<pid>/status");
    kb / 1024.0
}

pub fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|m| m.trim_start_matches([' ', '\t', ':']).to_owned())
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!("{model}, {cores} cores, Linux {}", kernel.trim())
}

/// A setting from the environment, or its default.
pub fn setting<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}
