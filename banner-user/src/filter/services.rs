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
    // One pattern with the three messages as its branches: what comes before them (the
    // server, the client's name and address, where the greedy rdns gives back to the last
    // bracket) is read once a line, not once for each message tried.
    vec![attempt(format!(
        r"{pre}(?:USER <F-USER>(?:\S+|.*?)</F-USER>(?: \(Login failed\))?: {why}|SECURITY VIOLATION: <F-ALT_USER>(?:\S+|.*?)</F-ALT_USER> login attempted|Maximum login attempts \(\d+\) exceeded)"
    ))]
}

pub fn pure_ftpd(_mode: &str) -> Vec<Pattern> {
    // `(?@ADDR)`: before a login succeeds pure-ftpd writes `?` for the account, so the
    // address follows `?@` directly and no user name can stand before it. A letter that
    // is not ASCII is read as `.`: a pattern all ASCII is searched by a chain on ASCII
    // lines (one that names `ü` went to the backtracker on every line, 24,600
    // instructions a line, most of them clearing its memory).
    let failed = [
        r"Authentication failed for user \[.*\]",
        r"Authentifizierung fehlgeschlagen f.r Benutzer \[.*\]\.",
        r"Erreur d'authentification pour l'utilisateur \[.*\]",
        r"Autentificaci.n fallida para el usuario \[.*\]",
        r"Autenticazione falita per l'utente \[.*\]",
        r"Autorisatie faalde voor gebruiker \[.*\]",
        r"Autentica..o falhou para usu.rio \[.*\]",
    ]
    .join("|");
    vec![attempt(format!(
        r"^\(\?@<HOST>\) \[WARNING\] (?:{failed})\s*$"
    ))]
}

// ---------------------------------------------------------------------------------------
// PAM (any program)

/// `ruser` may hold client text with spaces (vsftpd puts the typed name there), so it is
/// taken without spaces when that parses, else up to the `rhost=` after which only pam's
/// own `user=ACCOUNT` follows. `user=` is only written for an existing account, whose name
/// has no spaces: it is never read across a space, so no name can move the address.
pub const PAM_RHOST: &str = r"ruser=<F-ALT_USER>(?:\S*|\S.*?)</F-ALT_USER> rhost=<HOST>(?:\s+user=<F-USER>\S*</F-USER>)?\s*$";

pub fn pam_generic(_mode: &str) -> Vec<Pattern> {
    vec![attempt(format!(
        r"^(?:\(pam_[a-z]+\)|pam_[a-z]+(?:\(\S+\))?:?)\s+authentication failure;(?:\s+(?:(?:logname|e?uid)=\S*)){{0,3}} tty=\S* {PAM_RHOST}"
    ))]
}

// ---------------------------------------------------------------------------------------
// Databases, DNS

pub fn mysqld_auth(_mode: &str) -> Vec<Pattern> {
    // The user name is quoted and cannot hold a quote; the line must end with mysqld's
    // own words, so nothing after the address is client text.
    vec![attempt(
        r"^(?:(?:\d{6}|\d{4}-\d{2}-\d{2})[ T]\s?\d{1,2}:\d{2}:\d{2} )?(?:\d+ )?\[\w+\] (?:\[[^\]]+\] )*Access denied for user '<F-USER>[^']+</F-USER>'@'<HOST>' (?:to database '[^']*'|\(using password: (?:YES|NO)\))*\s*$",
    )]
}

pub fn named_refused(_mode: &str) -> Vec<Pattern> {
    // `[category: ][error: ]client [@0x...] ADDR#PORT [(qname)]: ...`: the address comes
    // before the query name, the only client text. One pattern with the three messages
    // as its branches: the client's part is read once a line, not once for each message
    // tried (a zone transfer's line read it three times).
    let client = r"^(?:[\w-]+: )?(?:(?:error|info|warning|notice): )?client(?: @\S*)? <HOST>#\d+(?: \(\S+\))?: ";
    vec![attempt(format!(
        r"{client}(?:(?:view [\w-]+: )?query(?: \(cache\))? '\S+' denied|(?:view [\w-]+: )?zone transfer '\S+' denied|bad zone transfer request: '\S+': non-authoritative zone \(NOTAUTH\))\s*$"
    ))]
}

// ---------------------------------------------------------------------------------------
// Web applications

pub fn grafana(_mode: &str) -> Vec<Pattern> {
    // logfmt: `remote_addr=` is grafana's last field, so the address is the line's end,
    // and what lies between the user and it is skipped whole (`(?: .*?)?`): no quoted
    // value can end the line. The user is the first `uname=` field's value, read field
    // by field so no quoted value supplies it, in an optional part of its own: a group
    // inside the repetition would leave every line to the backtracker (a chain does not
    // follow a repeated group). A key holds no `=`, so each field is read one way, and a
    // value that opens a quote is read only to its closing one (read as a bare word,
    // `error="x uname=bob"` handed the walk a user). An empty `uname=` (no such user)
    // ends the search there. The fields after the user are not read one by one: only
    // the address is taken from them, and walking them cost ~130 ns a line.
    let field = r#"(?: [^\s=]+=(?:"[^"]*"|[^\s"]\S*|))"#;
    vec![attempt(format!(
        r#"^(?:lvl=err?or )?msg="Invalid username or password"(?:{field}*? uname=(?:"<F-ALT_USER>[^"]+</F-ALT_USER>"|<F-USER>[^\s"]\S*</F-USER>)?)?(?: .*?)? remote_addr=<ADDR>\s*$"#
    ))]
}

pub fn gitea(_mode: &str) -> Vec<Pattern> {
    // `[DATE ]SOURCE:LINE:FUNC() [I] Failed authentication attempt for NAME from ADDR:PORT:
    // ERROR [uid: N, name: NAME]`. The typed name is client text on both sides of the
    // address; gitea's account names have no spaces, so both are read without spaces and
    // the line must end with gitea's bracket: a name that carries ` from ADDR:PORT: ` holds
    // spaces and the line does not match at all.
    vec![attempt(
        r"^(?:\d{4}/\d\d/\d\d \d\d:\d\d:\d\d )?\S+ \[[A-Z]\] Failed authentication attempt for <F-USER>\S+</F-USER> from <ADDR>:\d+: [\w' ]+ \[uid: \d+, name: \S*\]\s*$",
    )]
}

pub fn cockpit(_mode: &str) -> Vec<Pattern> {
    // cockpit's logins go through PAM's `cockpit` service.
    vec![attempt(format!(
        r"^pam_[a-z]+\(cockpit:auth\):\s+authentication failure;(?:\s+(?:(?:logname|e?uid)=\S*)){{0,3}} tty=\S* {PAM_RHOST}"
    ))]
}

pub fn openvpn(_mode: &str) -> Vec<Pattern> {
    // `[CN/]ADDR:PORT MESSAGE`: OpenVPN writes the peer first; what follows is its own
    // text (a certificate subject, which a client chooses, only after the address).
    let peer = r"^(?:\S+/)?(?:\[AF_INET6?\])?<ADDR>:\d+ ";
    vec![
        attempt(format!(
            r"{peer}TLS Error: (?:TLS handshake failed|TLS key negotiation failed to occur within \d+ seconds|incoming packet authentication failed from )"
        )),
        attempt(format!(r"{peer}TLS Auth Error: ")),
        attempt(format!(r"{peer}VERIFY ERROR: ")),
        attempt(format!(
            r"{peer}WARNING: Bad encapsulated packet length from peer"
        )),
    ]
}
