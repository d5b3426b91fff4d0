//! The words plugstack.conf and the user's options share: the mode and the name checks.
//! A leaf: [`crate::config`] and [`crate::options`] both use it, it uses neither.

/// What the plugin sets in a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Rendezvous, ranks and fabric.
    On,
    /// Nothing.
    Off,
    /// Fabric variables only: for launchers (submitit, ...) that refuse pre-set ranks.
    FabricOnly,
}

/// Why a value was refused; the text is shown to the user as it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadValue(pub String);

impl Mode {
    pub fn parse(s: &str) -> Result<Mode, BadValue> {
        match s {
            "on" | "yes" | "1" => Ok(Mode::On),
            "off" | "no" | "0" => Ok(Mode::Off),
            "fabric-only" => Ok(Mode::FabricOnly),
            _ => Err(BadValue(format!("{s:?} is not on, off or fabric-only"))),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Mode::On => "on",
            Mode::Off => "off",
            Mode::FabricOnly => "fabric-only",
        }
    }
}

/// A variable name as the shell takes it: a letter or '_', then letters, digits and '_'.
pub fn valid_var_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c == '_' || c.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
}

/// A profile name: 1 to 64 of letters, digits, '-', '_' and '.' (it is shown in messages
/// and logs, and names a key of the profiles file).
pub fn valid_profile_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}
