//! Who this function runs as, from STS: its account, partition and role.

use crate::accounts::Home;
use crate::error::{Error, Result};

/// Who this function runs as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// Our account and partition.
    pub home: Home,
    /// The role name when running as an assumed role (as Lambda does).
    pub role: Option<String>,
    /// The caller's ARN: the CLI records it as who asked for a release or restore.
    pub arn: String,
}

impl Identity {
    /// From GetCallerIdentity's ARN, e.g. `arn:aws:sts::123456789012:assumed-role/Name/session`.
    pub fn from_arn(account: String, arn: &str) -> Self {
        let role = arn
            .split_once(":assumed-role/")
            .and_then(|(_, rest)| rest.split('/').next())
            .filter(|name| !name.is_empty())
            .map(str::to_owned);
        let partition = arn
            .split(':')
            .nth(1)
            .filter(|p| !p.is_empty())
            .unwrap_or("aws")
            .to_owned();
        Self {
            home: Home { account, partition },
            role,
            arn: arn.to_owned(),
        }
    }
}

pub async fn caller_identity(sts: &aws_sdk_sts::Client) -> Result<Identity> {
    let out = sts
        .get_caller_identity()
        .send()
        .await
        .map_err(|e| Error::aws("sts", "GetCallerIdentity", e))?;
    match (out.account, out.arn) {
        (Some(account), Some(arn)) => Ok(Identity::from_arn(account, &arn)),
        _ => Err(Error::Unexpected(
            "GetCallerIdentity answered without an account or ARN".into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_knows_an_assumed_role_from_a_user() {
        let lambda = Identity::from_arn(
            "1".into(),
            "arn:aws:sts::1:assumed-role/exfil-responder-Role-ABC/exfil-responder",
        );
        assert_eq!(lambda.role.as_deref(), Some("exfil-responder-Role-ABC"));
        assert_eq!(lambda.home.partition, "aws");
        let china = Identity::from_arn("1".into(), "arn:aws-cn:sts::1:assumed-role/R/s");
        assert_eq!(china.home.partition, "aws-cn");
        assert_eq!(Identity::from_arn("1".into(), "arn:aws:iam::1:user/alice").role, None);
    }
}
