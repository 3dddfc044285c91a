// Module reports: see its headers.
