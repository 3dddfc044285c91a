// Module store: see its headers.
