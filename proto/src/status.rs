//! Status codes: one byte in every reply that can fail.
//!
//! A newtype rather than an enum, because a peer may send a code this
//! version does not know, and that must still decode (and be shown).

use std::fmt;

#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Status(pub u8);

macro_rules! statuses {
    ($($name:ident = $value:expr, $text:expr;)*) => {
        impl Status {
            $(pub const $name: Status = Status($value);)*

            /// The MooseFS name of the code, or `None` for unknown codes.
            pub fn name(self) -> Option<&'static str> {
                match self.0 {
                    $($value => Some(stringify!($name)),)*
                    _ => None,
                }
            }

            /// What the code means, for logs.
            pub fn text(self) -> &'static str {
                match self.0 {
                    $($value => $text,)*
                    _ => "unknown status",
                }
            }
        }
    };
}

statuses! {
    OK = 0, "ok";
    EPERM = 1, "operation not permitted";
    ENOTDIR = 2, "not a directory";
    ENOENT = 3, "no such file or directory";
    EACCES = 4, "permission denied";
    EEXIST = 5, "file exists";
    EINVAL = 6, "invalid argument";
    ENOTEMPTY = 7, "directory not empty";
    CHUNKLOST = 8, "chunk lost";
    OUTOFMEMORY = 9, "out of memory";
    INDEXTOOBIG = 10, "chunk index too big";
    LOCKED = 11, "chunk locked";
    NOCHUNKSERVERS = 12, "no chunkservers";
    NOCHUNK = 13, "no such chunk";
    CHUNKBUSY = 14, "chunk busy";
    REGISTER = 15, "incorrect register blob";
    NOTDONE = 16, "operation not completed";
    NOTOPENED = 17, "file not opened";
    NOTSTARTED = 18, "write not started";
    WRONGVERSION = 19, "wrong chunk version";
    CHUNKEXIST = 20, "chunk already exists";
    NOSPACE = 21, "no space left";
    IO = 22, "I/O error";
    BNUMTOOBIG = 23, "incorrect block number";
    WRONGSIZE = 24, "incorrect size";
    WRONGOFFSET = 25, "incorrect offset";
    CANTCONNECT = 26, "cannot connect";
    WRONGCHUNKID = 27, "incorrect chunk id";
    DISCONNECTED = 28, "disconnected";
    CRC = 29, "CRC error";
    DELAYED = 30, "operation delayed";
    CANTCREATEPATH = 31, "cannot create path";
    MISMATCH = 32, "data mismatch";
    EROFS = 33, "read-only file system";
    QUOTA = 34, "quota exceeded";
    BADSESSIONID = 35, "bad session id";
    NOPASSWORD = 36, "password is needed";
    BADPASSWORD = 37, "incorrect password";
    ENOATTR = 38, "attribute not found";
    ENOTSUP = 39, "operation not supported";
    ERANGE = 40, "result too large";
    NOTFOUND = 41, "entity not found";
    ACTIVE = 42, "entity is active";
    CSNOTPRESENT = 43, "chunkserver not present";
    WAITING = 44, "waiting on lock";
    EAGAIN = 45, "resource temporarily unavailable";
    EINTR = 46, "interrupted system call";
    ECANCELED = 47, "operation canceled";
    ENOENT_NOCACHE = 48, "no such file or directory (not cacheable)";
    EPERM_NOTADMIN = 49, "operation not permitted (needs admin)";
    CLASSEXISTS = 50, "storage class exists";
    CLASSLIMITREACH = 51, "storage class limit reached";
    NOSUCHCLASS = 52, "no such storage class";
    CLASSINUSE = 53, "storage class in use";
}

impl Status {
    pub fn is_ok(self) -> bool {
        self == Status::OK
    }
}

impl fmt::Debug for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => f.write_str(name),
            None => write!(f, "Status({})", self.0),
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.text(), self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_unknown_codes() {
        assert_eq!(Status::CRC.0, 29);
        assert_eq!(Status::NOSPACE.name(), Some("NOSPACE"));
        assert_eq!(Status(54).name(), None);
        assert_eq!(format!("{:?}", Status(200)), "Status(200)");
        assert_eq!(format!("{}", Status::WRONGVERSION), "wrong chunk version (19)");
    }
}
