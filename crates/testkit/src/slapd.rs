//! A throwaway OpenLDAP `slapd` (Debian's `slapd` package) on free ports: suffix
//! `dc=example,dc=org`, `ou=people`, `ou=groups` and a service account
//! `cn=writ,ou=services,...` that may write only `member` and `uniqueMember` of
//! entries under `ou=groups` — the least privilege docs/connectors.md asks for. A
//! search returns at most 500 entries unless it is paged (RFC 2696), as on most
//! production directories.

use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const SUFFIX: &str = "dc=example,dc=org";
pub const ADMIN_DN: &str = "cn=admin,dc=example,dc=org";
pub const ADMIN_PASSWORD: &str = "admin-secret";
pub const WRIT_DN: &str = "cn=writ,ou=services,dc=example,dc=org";
pub const WRIT_PASSWORD: &str = "writ-secret";
pub const PEOPLE: &str = "ou=people,dc=example,dc=org";
pub const GROUPS: &str = "ou=groups,dc=example,dc=org";

const SLAPD: &str = "/usr/sbin/slapd";

/// A certificate and key (PEM) for slapd's `ldaps://` and StartTLS.
pub struct TlsFiles {
    pub certificate_pem: String,
    pub key_pem: String,
}

pub struct Slapd {
    dir: tempfile::TempDir,
    child: Child,
    port: u16,
    tls_port: Option<u16>,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("a free port")
}

/// Whether slapd is installed here (`.ci/run` installs it).
pub fn available() -> bool {
    Path::new(SLAPD).exists()
}

impl Slapd {
    /// Starts slapd and loads the base entries; panics with its log if it fails.
    pub fn start(tls: Option<TlsFiles>) -> Self {
        assert!(
            available(),
            "slapd is not installed: apt-get install slapd ldap-utils (.ci/run does)"
        );
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(dir.path().join("db")).expect("db dir");
        let port = free_port();
        let tls_port = tls.as_ref().map(|_| free_port());
        let mut tls_lines = String::new();
        if let Some(files) = &tls {
            let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
            std::fs::write(&cert, &files.certificate_pem).expect("cert");
            std::fs::write(&key, &files.key_pem).expect("key");
            tls_lines = format!(
                "TLSCertificateFile {}\nTLSCertificateKeyFile {}\n",
                cert.display(),
                key.display()
            );
        }
        let config = format!(
            r#"include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
include /etc/ldap/schema/nis.schema
pidfile {dir}/slapd.pid
modulepath /usr/lib/ldap
moduleload back_mdb
{tls_lines}
database mdb
maxsize 104857600
suffix "{SUFFIX}"
rootdn "{ADMIN_DN}"
rootpw {ADMIN_PASSWORD}
directory {dir}/db
sizelimit size.soft=500 size.hard=500 size.prtotal=unlimited
access to attrs=userPassword
  by self write
  by anonymous auth
  by * none
access to dn.subtree="{GROUPS}" attrs=member,uniqueMember
  by dn.exact="{WRIT_DN}" write
  by users read
access to *
  by users read
  by anonymous auth
"#,
            dir = dir.path().display()
        );
        let config_path = dir.path().join("slapd.conf");
        std::fs::write(&config_path, config).expect("slapd.conf");
        let mut urls = format!("ldap://127.0.0.1:{port}/");
        if let Some(tls_port) = tls_port {
            urls.push_str(&format!(" ldaps://127.0.0.1:{tls_port}/"));
        }
        let log = std::fs::File::create(dir.path().join("slapd.log")).expect("log");
        let child = Command::new(SLAPD)
            .arg("-f")
            .arg(&config_path)
            .arg("-h")
            .arg(&urls)
            .arg("-d")
            .arg("0")
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("run slapd");
        let slapd = Self {
            dir,
            child,
            port,
            tls_port,
        };
        slapd.wait_until_listening();
        slapd.add(&format!(
            "dn: {SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\ndc: example\no: Example\n\n\
             dn: {PEOPLE}\nobjectClass: organizationalUnit\nou: people\n\n\
             dn: {GROUPS}\nobjectClass: organizationalUnit\nou: groups\n\n\
             dn: ou=services,{SUFFIX}\nobjectClass: organizationalUnit\nou: services\n\n\
             dn: {WRIT_DN}\nobjectClass: person\nobjectClass: simpleSecurityObject\ncn: writ\nsn: writ\nuserPassword: {WRIT_PASSWORD}\n"
        ));
        slapd
    }

    fn wait_until_listening(&self) {
        let deadline = Instant::now() + Duration::from_secs(15);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "slapd did not start: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("slapd.log")).unwrap_or_default()
    }

    /// `ldap://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("ldap://127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `ldaps://127.0.0.1:<port>`, when started with TLS.
    pub fn ldaps_url(&self) -> Option<String> {
        self.tls_port
            .map(|port| format!("ldaps://127.0.0.1:{port}"))
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn tool(&self, program: &str, ldif: &str) -> Result<(), String> {
        let mut child = Command::new(program)
            .args([
                "-x",
                "-H",
                &self.url(),
                "-D",
                ADMIN_DN,
                "-w",
                ADMIN_PASSWORD,
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{program} (Debian's ldap-utils): {e}"));
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(ldif.as_bytes())
            .expect("write LDIF");
        let output = child.wait_with_output().expect(program);
        if output.status.success() {
            Ok(())
        } else {
            Err(String::from_utf8_lossy(&output.stderr).into_owned())
        }
    }

    /// `ldapadd` as the directory's administrator; panics on failure.
    pub fn add(&self, ldif: &str) {
        if let Err(error) = self.tool("ldapadd", ldif) {
            panic!("ldapadd failed: {error}\n{ldif}");
        }
    }

    /// `ldapadd`, reporting failure (for names the directory may refuse).
    pub fn try_add(&self, ldif: &str) -> Result<(), String> {
        self.tool("ldapadd", ldif)
    }

    /// `ldapmodify` as the administrator; panics on failure.
    pub fn modify(&self, ldif: &str) {
        if let Err(error) = self.tool("ldapmodify", ldif) {
            panic!("ldapmodify failed: {error}\n{ldif}");
        }
    }
}

impl Drop for Slapd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
