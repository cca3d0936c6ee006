//! `rbuild login` / `rbuild logout`: credentials kept in docker's config.json (or its
//! credential helper), with docker's flags, prompts and messages, so either tool can
//! use what the other stored.

use std::io::{BufRead, IsTerminal, Read, Write};
use std::process::ExitCode;

use clap::Args;
use std::sync::Arc;

use rbuild_builder::store::registry::creds::{
    Credential, DockerConfig, Stored, host_of, server_key,
};
use rbuild_builder::store::registry::{self, Given};

use super::{CliError, Global};

/// Log in to a registry (docker.io when SERVER is not given).
#[derive(Debug, Args)]
pub struct LoginArgs {
    /// Username.
    #[arg(short, long)]
    username: Option<String>,
    /// Password (visible to other users of this machine; prefer --password-stdin).
    #[arg(short, long)]
    password: Option<String>,
    /// Take the password from standard input.
    #[arg(long)]
    password_stdin: bool,
    /// Registry host[:port].
    #[arg(value_name = "SERVER")]
    server: Option<String>,
}

/// Log out from a registry (docker.io when SERVER is not given).
#[derive(Debug, Args)]
pub struct LogoutArgs {
    /// Registry host[:port].
    #[arg(value_name = "SERVER")]
    server: Option<String>,
}

pub fn login(global: &Global, args: LoginArgs) -> Result<ExitCode, CliError> {
    // Docker warns before it checks anything else, so the warning is never lost.
    if args.password.is_some() {
        eprintln!("WARNING! Using --password via the CLI is insecure. Use --password-stdin.");
        if args.password_stdin {
            return Err(usage(
                "--password and --password-stdin are mutually exclusive",
            ));
        }
    }
    let server = args.server.as_deref().unwrap_or("docker.io");
    // Loaded first so a bad store config or flag fails before any prompt; the
    // verification below needs it.
    let settings = global.registry_settings()?;
    let config = DockerConfig::from_env()?;
    config.check()?;

    let mut password = args.password;
    if args.password_stdin {
        if args.username.as_deref().unwrap_or("").is_empty() {
            return Err(usage("Must provide --username with --password-stdin"));
        }
        let mut text = String::new();
        std::io::stdin().read_to_string(&mut text)?;
        let text = text.strip_suffix('\n').unwrap_or(&text);
        password = Some(text.strip_suffix('\r').unwrap_or(text).to_string());
    }
    let credential = ask_missing(args.username, password)?;

    // Docker checks the credentials with the registry before it keeps them.
    let host = host_of(server);
    let given = Given {
        registry: host.clone(),
        credential: credential.clone(),
    };
    let client = super::registry::client_with(&settings, Arc::new(given))?;
    registry::runtime()?.block_on(registry::check_login(&client, &host))?;
    match config.store(server, &credential)? {
        Stored::File(path) => eprintln!(
            "WARNING! Your password will be stored unencrypted in {}.\n\
             Configure a credential helper (credsStore) to remove this warning.",
            path.display()
        ),
        Stored::Helper(_) => {}
    }
    println!("Login Succeeded");
    Ok(ExitCode::SUCCESS)
}

pub fn logout(_global: &Global, args: LogoutArgs) -> Result<ExitCode, CliError> {
    let server = args.server.as_deref().unwrap_or("docker.io");
    let config = DockerConfig::from_env()?;
    let key = server_key(server);
    if config.erase(server)? {
        println!("Removing login credentials for {key}");
    } else {
        println!("Not logged in to {key}");
    }
    Ok(ExitCode::SUCCESS)
}

/// Prompts for what the flags did not give, on a terminal only (the password without
/// echo), as `docker login` does.
fn ask_missing(username: Option<String>, password: Option<String>) -> Result<Credential, CliError> {
    let username = username.filter(|u| !u.is_empty());
    let password = password.filter(|p| !p.is_empty());
    if let (Some(u), Some(p)) = (&username, &password) {
        return Ok(Credential::password(u.clone(), p.clone()));
    }
    if !std::io::stdin().is_terminal() {
        return Err(usage(
            "Cannot perform an interactive login from a non TTY device",
        ));
    }
    let username = match username {
        Some(u) => u,
        None => {
            print!("Username: ");
            std::io::stdout().flush()?;
            let mut line = String::new();
            std::io::stdin().lock().read_line(&mut line)?;
            let line = line.trim().to_string();
            if line.is_empty() {
                return Err(usage("Non-null Username Required"));
            }
            line
        }
    };
    let password = match password {
        Some(p) => p,
        None => {
            let p = rpassword::prompt_password("Password: ")?;
            if p.is_empty() {
                return Err(usage("Password Required"));
            }
            p
        }
    };
    Ok(Credential::password(username, password))
}

fn usage(message: &str) -> CliError {
    CliError::Usage(message.to_string())
}
