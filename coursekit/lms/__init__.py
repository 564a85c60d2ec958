"""The exchange with a learning platform: collecting submissions, the roster, grade export
and feedback archives."""
