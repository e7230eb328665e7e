fn main() {
    std::process::exit(lifeboat::cli::main());
}
