package importer

// LockWorkDirForTest takes the work-directory lock Run takes.
var LockWorkDirForTest = lockWorkDir

// WaitForTimestampForTest is waitForTimestamp.
var WaitForTimestampForTest = waitForTimestamp
