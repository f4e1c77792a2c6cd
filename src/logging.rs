//! Logging of what happens on the crate's background threads, through the
//! [`log`](https://docs.rs/log) facade when the `log` feature is on: route
//! refresh failures, broker health changes, rebalances, retries,
//! transaction check-backs and dropped work. Messages read
//! `event: key=value ...`, with the target `rocketmq_blocking`. Off by
//! default; with the feature on and no logger installed nothing is printed.
//! Without the feature the macros compile to nothing.

/// A warning: something failed and was dropped or will be retried.
macro_rules! log_warn {
    ($($arg:tt)*) => {{
        #[cfg(feature = "log")]
        ::log::warn!(target: "rocketmq_blocking", $($arg)*);
        #[cfg(not(feature = "log"))]
        if false {
            let _ = ::std::format!($($arg)*);
        }
    }};
}

/// A change worth knowing: a rebalance, a broker state change.
macro_rules! log_info {
    ($($arg:tt)*) => {{
        #[cfg(feature = "log")]
        ::log::info!(target: "rocketmq_blocking", $($arg)*);
        #[cfg(not(feature = "log"))]
        if false {
            let _ = ::std::format!($($arg)*);
        }
    }};
}

/// Detail: single failed pulls, retries of a send.
macro_rules! log_debug {
    ($($arg:tt)*) => {{
        #[cfg(feature = "log")]
        ::log::debug!(target: "rocketmq_blocking", $($arg)*);
        #[cfg(not(feature = "log"))]
        if false {
            let _ = ::std::format!($($arg)*);
        }
    }};
}
