"""What several test packages share: real servers (SMTP, IMAP) and running `comms` as a person does."""
