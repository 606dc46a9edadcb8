//! Passwords as Synnefo wants them, for a new server and a console.

use rand::distr::{Alphanumeric, SampleString};

/// Synnefo's rule: at least 10 characters with upper case, lower case and digits.
pub(super) fn is_strong(password: &str) -> bool {
    password.chars().count() >= 10
        && password.chars().any(char::is_uppercase)
        && password.chars().any(char::is_lowercase)
        && password.chars().any(|c| c.is_ascii_digit())
}

pub(super) fn random_password() -> String {
    let mut rng = rand::rng();
    for _ in 0..64 {
        let candidate = Alphanumeric.sample_string(&mut rng, 10);
        if is_strong(&candidate) {
            return candidate;
        }
    }
    format!("{}aA1", Alphanumeric.sample_string(&mut rng, 7))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords() {
        assert!(is_strong("Abcdefgh12"));
        assert!(!is_strong("abcdefgh12"));
        assert!(!is_strong("Abc12"));
        for _ in 0..20 {
            assert!(is_strong(&random_password()));
        }
    }
}
