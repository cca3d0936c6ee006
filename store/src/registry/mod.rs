pub mod creds;
pub mod settings;
