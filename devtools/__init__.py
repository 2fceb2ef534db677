"""Development tools for dbconnmgr: throwaway servers, the demo. Not shipped in the wheel."""
