// Module experiments: see its headers.
