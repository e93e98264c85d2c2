package login

// CHAP digests of 01 ‖ "alice-secret-12" ‖ 02 03 … 11, computed with Python's hashlib
// (and md5sum for MD5), independently of Go's crypto packages.
const (
	chapVectorMD5    = "d2cba57909f276300df5e36eb46154a3"
	chapVectorSHA1   = "caf1fdea6755551d8c85b4902c968e126dcc582b"
	chapVectorSHA256 = "28a8bd55cd09a6124147da035b71efc5ca0ba347ef1f0db3ac9781f1c28087f1"
)
