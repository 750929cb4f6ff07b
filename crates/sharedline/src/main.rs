//! The `sharedline` binary; everything is in the library (see its Layout).

fn main() -> std::process::ExitCode {
    sharedline::main()
}
