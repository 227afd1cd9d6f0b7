//! Everything the CLI prints to stdout goes through here, so that a reader which goes
//! away (`writ audit export | head`) ends the command quietly instead of a panic.

use std::io::Write;

/// Writes `text` as it is. A closed pipe ends the process with success: the reader
/// had what it wanted. Any other write error ends it with the failure code.
pub fn write(text: &str) {
    let mut stdout = std::io::stdout().lock();
    if let Err(error) = stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        if error.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("error: cannot write to stdout: {error}");
        std::process::exit(i32::from(crate::EXIT_FAILED));
    }
}

/// `println!` for the CLI's stdout.
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::stdout::write(&format!("{}\n", format_args!($($arg)*)))
    };
}

pub(crate) use outln;
