// This package's release, written into the bundle (purelb_build_info). A test keeps it
// equal to "version" in package.json.
export const VERSION = '0.1.0';
