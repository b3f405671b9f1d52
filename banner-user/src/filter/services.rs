//! Built-in filters for FTP servers, databases, DNS, VPN, PAM and web applications.
//!
//! As everywhere in banner's built-ins: the address comes from where the service writes it,
//! before any client text, or the pattern is anchored at the line's end so that client
//! text (a user name) cannot put a second address where the pattern would take it.

use super::builtin::{attempt, Pattern};

/// `pam_unix(SERVICE:auth): authentication failure; ... rhost=ADDR [user=NAME]`, where
/// the fields before `rhost=` may hold client text: anchored at the end, the address is
/// the `rhost=` after which only `user=` follows.
fn pam_failure(service: &str) -> String {
    format!(
        r"authentication failure; logname=\S* uid=\S* euid=\S* tty={service} ruser=<F-USER>\S*</F-USER> rhost=<HOST>(?:\s+user=\S*)?\s*$"
    )
}

// ---------------------------------------------------------------------------------------
// FTP

pub fn vsftpd(_mode: &str) -> Vec<Pattern> {
    vec![
        attempt(format!(
            r"^(?:\(pam_unix\)|pam_unix(?:\(vsftpd:auth\))?:)\s+{}",
            pam_failure(r"(?:ftp)?")
        )),
        // vsftpd's own log: the user (client text) is in brackets before the address, so
        // the line must end where vsftpd's own text ends.
        attempt(r#"^\[pid \d+\] \[[^\]]+\] FAIL LOGIN: Client "<HOST>"(?:, "[^"]*")?\s*$"#),
    ]
}

pub fn proftpd(_mode: &str) -> Vec<Pattern> {
    // `[HOST proftpd[PID] ]SERVER (rdns[ADDR])`: the address is the client's, before
    // anything the client sends; the greedy rdns takes the last bracket before `)`.
    let pre = r"^(?:\S+ proftpd\[\d+\]:? )?\S+ \(\S+\[<HOST>\]\)[: -]+ ";
    let why = r"(?:[uU]ser not authorized for login|[nN]o such user found|[iI]ncorrect password|[pP]assword expired|[aA]ccount disabled|[iI]nvalid shell: '\S+'|[uU]ser in \S+|[lL]imit (?:access|configuration) denies login|[nN]ot a UserAlias|[mM]aximum login length exceeded)";
    vec![
        attempt(format!(
            r"{pre}USER <F-USER>(?:\S+|.*?)</F-USER>(?: \(Login failed\))?: {why}"
        )),
        attempt(format!(
            r"{pre}SECURITY VIOLATION: <F-USER>(?:\S+|.*?)</F-USER> login attempted"
        )),
        attempt(format!(r"{pre}Maximum login attempts \(\d+\) exceeded")),
    ]
}

pub fn pure_ftpd(_mode: &str) -> Vec<Pattern> {
    // `(?@ADDR)`: before a login succeeds pure-ftpd writes `?` for the account, so the
    // address follows `?@` directly and no user name can stand before it.
    let failed = [
        r"Authentication failed for user \[.*\]",
        r"Authentifizierung fehlgeschlagen für Benutzer \[.*\]\.",
        r"Erreur d'authentification pour l'utilisateur \[.*\]",
        r"Autentificación fallida para el usuario \[.*\]",
        r"Autenticazione falita per l'utente \[.*\]",
        r"Autorisatie faalde voor gebruiker \[.*\]",
        r"Autenticação falhou para usuário \[.*\]",
    ]
    .join("|");
    vec![attempt(format!(
        r"^\(\?@<HOST>\) \[WARNING\] (?:{failed})\s*$"
    ))]
}
