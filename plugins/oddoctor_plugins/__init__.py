"""oddoctor's built-in check plugins, registered through the `oddoctor` entry-point group."""
