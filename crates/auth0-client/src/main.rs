//! The `auth0-client` binary: configuration from the environment (as the original reads it),
//! then the service. Everything lives in the library.

fn main() -> std::process::ExitCode {
    auth0_client::main_from_env()
}
