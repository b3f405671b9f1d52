//! Built-in filters for mail servers: postfix, dovecot, exim, sendmail, courier.
//!
//! Mail servers write the client's address in brackets after its reverse name
//! (`name[192.0.2.1]`, `H=name (helo) [192.0.2.1]`); the client's own words (HELO, MAIL
//! FROM, user names) come after it, or inside parentheses that cannot hold a bracketed
//! address followed by the server's text. Each pattern takes the first bracketed address
//! after the server's fixed words, or is anchored at the line's end where client text
//! precedes the address.

use super::builtin::{attempt, Pattern};

// ---------------------------------------------------------------------------------------
// postfix

pub const POSTFIX_MODES: &[&str] = &[
    "more",
    "rbl",
    "auth",
    "ddos",
    "extra",
    "aggressive",
    "errors",
];

/// `from name[ADDR]:port`: the reverse name has no brackets, so the first bracket is postfix's.
const PF_FROM: &str = r"from [^\[\s]*\[<HOST>\](?::\d+)?";
/// A queue id or NOQUEUE, then postfix's reject verb.
const PF_REJECT: &str = r"^(?:NOQUEUE|[0-9A-Za-z]+): (?:milter-)?reject: [A-Z]{4}";

fn postfix_normal() -> Vec<Pattern> {
    vec![
        attempt(format!(
            r"{PF_REJECT} {PF_FROM}: [45][50][04] [45]\.\d\.\d+ (?:(?:<[^>]*>)?: )?(?:(?:Helo command|(?:Sender|Recipient) address) rejected: )?(?:Service unavailable|(?:Client host|Command|Data command) rejected|Relay access denied|(?:Host|Domain) not found|need fully-qualified hostname|match|[Uu](?:ser unknown|ndeliverable address))\b"
        )),
        attempt(format!(
            r"^(?:improper command pipelining|too many errors) after [A-Z]+ {PF_FROM}(?::|$)"
        )),
    ]
}

fn postfix_auth() -> Pattern {
    attempt(
        r"^warning: [^\[\s]*\[<HOST>\](?::\d+)?: SASL (?i:LOGIN|PLAIN|(?:CRAM|DIGEST)-MD5) authentication failed:",
    )
}

fn postfix_ddos() -> Vec<Pattern> {
    // Every SMTP verb but DATA: a lost connection inside DATA is a lawful client's accident.
    const VERBS: &str =
        "(?:CONNECT|EHLO|HELO|STARTTLS|AUTH|MAIL|RCPT|RSET|NOOP|VRFY|ETRN|BDAT|QUIT|UNKNOWN|XCLIENT|XFORWARD)";
    vec![
        attempt(format!(r"^lost connection after {VERBS} {PF_FROM}$")),
        attempt(format!(
            r"^disconnect {PF_FROM}(?: [a-z]+=\d+(?:/\d+)?)*? auth=0/[1-9]\d*(?: [a-z]+=\d+(?:/\d+)?)*$"
        )),
        attempt(format!(r"^(?:PREGREET \d+|HANGUP) after \S+ {PF_FROM}")),
        attempt(format!(r"^COMMAND (?:TIME|COUNT|LENGTH) LIMIT {PF_FROM}")),
    ]
}

pub fn postfix(mode: &str) -> Vec<Pattern> {
    match mode {
        "rbl" => vec![attempt(format!(
            r"{PF_REJECT} {PF_FROM}: [45]54 [45]\.7\.1 Service unavailable; Client host \[\S+\] blocked\b"
        ))],
        "auth" => vec![postfix_auth()],
        "ddos" => postfix_ddos(),
        "extra" => [vec![postfix_auth()], postfix_normal()].concat(),
        "aggressive" => [vec![postfix_auth()], postfix_normal(), postfix_ddos()].concat(),
        "errors" => vec![attempt(format!(r"^too many errors after \S+ {PF_FROM}$"))],
        _ => postfix_normal(),
    }
}

/// Failed SASL logins that are the server's fault, not the client's.
pub fn postfix_ignores(mode: &str) -> Vec<String> {
    let lost =
        r"^warning: \S+: SASL \S+ authentication failed: Connection lost to authentication server"
            .to_string();
    match mode {
        "auth" | "extra" => vec![
            lost,
            r"^warning: \S+: SASL \S+ authentication failed: Invalid authentication mechanism"
                .to_string(),
        ],
        "aggressive" => vec![lost],
        _ => Vec::new(),
    }
}

// ---------------------------------------------------------------------------------------
// dovecot

pub const DOVECOT_MODES: &[&str] = &["normal", "aggressive"];

/// What dovecot puts before the message: the auth process, the PAM module, the login
/// process, `Info: `, an auth-worker connection. The filter's message prefix (as in
/// fail2ban's own dovecot.conf): matched once a line, not once a pattern.
pub const DC_PREFIX: &str = r"^(?:(?:dovecot: )?auth(?:-worker)?(?:\([^)]+\))?: )?(?:pam_unix\(dovecot:auth\): |(?:pop3|imap|managesieve|submission)-login: )?(?:Info: )?(?:conn \w+:auth(?:-worker)? \([^)]+\): auth(?:-worker)?<\d+>: )?";
/// How a login process ends, with dovecot's reasons (`: Inactivity`, `: Connection closed:
/// read(size=1003) failed: ...`) before the parenthesised verdict.
const DC_ENDED: &str = r"(?:Aborted login|Disconnected|Remote closed connection|Client has quit the connection)(?:: (?:\w+\([^):]*\) \w+|[^(]+))*";
/// After the verdict: the user (client text, which may hold `rip=`: the greedy match
/// makes the address the *last* `rip=`, the one dovecot wrote), method, address, the rest.
const DC_RIP: &str = r":(?: user=<<F-USER>.*</F-USER>>,)?(?: method=\S+,)? rip=<HOST>(?:,.*)?$";

pub fn dovecot(mode: &str) -> Vec<Pattern> {
    let mut v = vec![
        attempt(
            r"^authentication failure; logname=\S* uid=\S* euid=\S* tty=dovecot ruser=<F-USER>\S*</F-USER> rhost=<HOST>(?:\s+user=\S*)?\s*$",
        ),
        attempt(format!(
            r"^{DC_ENDED} \((?:auth failed, \d+ attempts(?: in \d+ secs)?|tried to use (?:disabled|disallowed) \S+ auth|proxy dest auth failed)\){DC_RIP}"
        )),
        // `pam(USER,ADDR[,SESSION])`: the user may hold commas and addresses, so the
        // address is the last one before the optional session and dovecot's fixed verdict.
        attempt(
            r"^pam\(<F-USER>\S+</F-USER>,<HOST>(?:,\S*)?\): pam_authenticate\(\) failed: (?:User not known to the underlying authentication module: \d+ Time\(s\)|Authentication failure \([Pp]assword mismatch\?\)|Permission denied)\s*$",
        ),
        attempt(
            r"^[a-z\-]{3,15}\(<F-USER>\S*</F-USER>,<HOST>(?:,\S*)?\): (?:[Uu]nknown user|[Ii]nvalid credentials|[Pp]assword mismatch)(?: \([^()]*\))*\s*$",
        ),
    ];
    if mode == "aggressive" {
        v.push(attempt(format!(
            r"^{DC_ENDED} \((?:no auth attempts|disconnected before auth was ready,|client didn't finish \S+ auth,)(?: (?:in|waited) \d+ secs)?\){DC_RIP}"
        )));
    }
    v
}

// ---------------------------------------------------------------------------------------
// exim (its own mainlog, or syslog as `exim[PID]:`)

pub const EXIM_MODES: &[&str] = &["normal", "aggressive"];

/// exim's process id in its own log.
const EX_PID: &str = r"^(?:\[\d+\] )?";
/// `H=rdns (helo) [ADDR]`: the HELO (client text) sits in parentheses without spaces, so
/// the bracket after it is exim's.
const EX_HOST_PRE: &str = r"(?:H=(?:[\w.-]+ )?(?:\(\S*\) )?)?\[<HOST>\]";
/// What exim writes after the address: port, interface, user, protocol.
const EX_HOST_SUF: &str = r"(?::\d+)?(?: I=\[\S+\](?::\d+)?)?(?: U=\S+)?(?: P=e?smtp)?";
/// The sender (client text, no spaces), written after the address.
const EX_SENDER: &str = r"F=(?:<>|[^@\s]+@\S+)";

pub fn exim(mode: &str) -> Vec<Pattern> {
    let host = format!("{EX_HOST_PRE}{EX_HOST_SUF}");
    let mut v = vec![
        attempt(format!(
            r"{EX_PID}{host}(?: {EX_SENDER})? sender verify fail for <\S+>: (?:Unknown user|Unrouteable address|all relevant MX records point to non-existent hosts)\s*$"
        )),
        attempt(format!(
            r"{EX_PID}\w+ authenticator failed for (?:[^\[( ]* )?(?:\(\S*\) )?\[<HOST>\](?::\d+)?(?: I=\[\S+\](?::\d+)?)?: 535 Incorrect authentication data(?: \(set_id=.*\)|: \d+ Time\(s\))?\s*$"
        )),
        attempt(format!(
            r"{EX_PID}{host}(?: {EX_SENDER})? rejected RCPT [^@\s]+@\S+: (?:relay not permitted|Sender verify failed|Unknown user|Unrouteable address)\s*$"
        )),
        attempt(format!(
            r#"{EX_PID}SMTP protocol synchronization error \([^)]*\): rejected (?:connection from|"\S+") {host} (?:next )?input=".*"\s*$"#
        )),
        attempt(format!(
            r#"{EX_PID}SMTP call from (?:[^\[( ]* )?{host} dropped: too many (?:nonmail commands|syntax or protocol errors) \(last (?:command )?was "[^"]*"\)\s*$"#
        )),
        // The quoted command is client text and may hold `" H=... [ADDR]`: the greedy `.*`
        // makes the address the last one, which exim writes after the command.
        attempt(format!(
            r#"{EX_PID}SMTP protocol error in ".*" {host} AUTH command used when not advertised\s*$"#
        )),
        attempt(format!(
            r"{EX_PID}no MAIL in SMTP connection from (?:[^\[( ]* )?(?:\(\S*\) )?{host} D=\d\S*s(?: C=\S*)?\s*$"
        )),
        attempt(format!(
            r"{EX_PID}(?:[\w-]+ )?SMTP connection from (?:[^\[( ]* )?(?:\(\S*\) )?{host} closed by DROP in ACL\s*$"
        )),
    ];
    if mode == "aggressive" {
        v.extend([
            attempt(format!(r"{EX_PID}no host name found for IP address <HOST>$")),
            attempt(format!(
                r"{EX_PID}no IP address found for host \S+ \(during SMTP connection from \[<HOST>\]\)$"
            )),
        ]);
    }
    v
}

/// The recipient whose spam is an attack, as fail2ban's exim-spam has it by default.
const EXIM_HONEYPOT: &str = "trap@example.com";

pub fn exim_spam(_mode: &str) -> Vec<Pattern> {
    let host = format!("{EX_HOST_PRE}{EX_HOST_SUF}");
    let scanned = r"\(scanned in \d+/\d+ secs \| Message-Id: \S+\)\. From \S+";
    vec![
        attempt(format!(
            r"{EX_PID}\S+ {EX_SENDER} {host} rejected by local_scan\(\): .{{0,256}}$"
        )),
        attempt(format!(
            r"{EX_PID}{host} {EX_SENDER} rejected RCPT [^@\s]+@\S+: .*dnsbl.*\s*$"
        )),
        attempt(format!(
            r"{EX_PID}\S+ {host} {EX_SENDER} rejected after DATA: This message contains a virus \(\S+\)\.\s*$"
        )),
        attempt(format!(
            r"{EX_PID}\S+ SA: Action: flagged as Spam but accepted: score=\d+\.\d+ required=\d+\.\d+ {scanned} \(host=\S+ \[<HOST>\]\) for {}$",
            regex::escape(EXIM_HONEYPOT)
        )),
        attempt(format!(
            r"{EX_PID}\S+ SA: Action: silently tossed message: score=\d+\.\d+ required=\d+\.\d+ trigger=\d+\.\d+ {scanned} \(host=(?:\S+ )?\[<HOST>\]\) for \S+$"
        )),
    ]
}

// ---------------------------------------------------------------------------------------
// sendmail

/// sendmail's queue id before the message.
const SM_QUEUE: &str = r"^(?:\w{14,20}: )?";
const SM_ADDR: &str = r"(?:IPv6:<IP6>|<IP4>)";

pub fn sendmail_auth(_mode: &str) -> Vec<Pattern> {
    vec![
        attempt(format!(
            r"{SM_QUEUE}(?:\S+ )?\[{SM_ADDR}\](?: \(may be forged\))?: possible SMTP attack: command=AUTH, count=\d+$"
        )),
        // The user name may hold `, relay=[...]`: anchored at the end, the relay is the
        // last one, which sendmail writes after the name.
        attempt(format!(
            r"{SM_QUEUE}AUTH failure \([^)]+\):(?: [^:]+:)? (?:authentication failure|user not found): [^,]*, (?:user=<F-USER>.*</F-USER>, )?relay=(?:\S+ )?\[{SM_ADDR}\](?: \(may be forged\))?$"
        )),
    ]
}

// ---------------------------------------------------------------------------------------
// courier

pub const COURIER_PROGRAMS: &[&str] = &[
    "imapd",
    "imapd-ssl",
    "pop3d",
    "pop3d-ssl",
    "imaplogin",
    "pop3login",
    "courierimapd",
    "courierpop3d",
    "courierimaplogin",
    "courierpop3login",
    "courierimapd-ssl",
    "courierpop3d-ssl",
];

pub fn courier_auth(_mode: &str) -> Vec<Pattern> {
    // The fields before `ip=` may hold client text (`user=`): anchored at the end, the
    // address is the last `ip=[...]`, which courier writes after them. The user is the
    // first `user=` field, in a branch of its own: a group inside the repetition would
    // leave every line to the backtracker (a chain does not follow a repeated group).
    let field = r"(?:\w+=[^,]*, )";
    vec![attempt(format!(
        r"^LOGIN FAILED, (?:{field}*?user=<F-USER>[^,]*</F-USER>, {field}*|{field}*)ip=\[<HOST>\](?:, port=\[\d+\])?\s*$"
    ))]
}
