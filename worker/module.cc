// Module worker: see its headers.
