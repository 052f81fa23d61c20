"""Messages to applicants: composed from templates in their language, delivered by mail and SMS."""
