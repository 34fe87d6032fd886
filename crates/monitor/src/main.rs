//! `pelagos-monitor --root ROOT --runroot RUNROOT ID`: a container's monitor (see the library).

fn main() {
    std::process::exit(pelagos_monitor::main());
}
