// The codeName the server sends with an error code (src/mongo/base/
// error_codes.yml): the codes a failpoint is likely to inject, those that
// drivers treat specially (network, not-primary, shutdown, interruption,
// write concern, transactions) and the common ones. The server names a code
// it does not know "Location<code>"; so does this table for the codes it
// leaves out.
import java.util.HashMap;
import java.util.Map;

final class ErrorCodes {
    private static final Map<Integer, String> NAMES = new HashMap<>();

    static {
        String table = ""
            + "1 InternalError, 2 BadValue, 4 NoSuchKey, 6 HostUnreachable, 7 HostNotFound, "
            + "8 UnknownError, 9 FailedToParse, 11 UserNotFound, 13 Unauthorized, 14 TypeMismatch, "
            + "16 InvalidLength, 17 ProtocolError, 18 AuthenticationFailed, 20 IllegalOperation, "
            + "24 LockTimeout, 26 NamespaceNotFound, 27 IndexNotFound, 43 CursorNotFound, 46 LockBusy, "
            + "48 NamespaceExists, 50 MaxTimeMSExpired, 59 CommandNotFound, 64 WriteConcernTimeout, "
            + "66 ImmutableField, 67 CannotCreateIndex, 68 IndexAlreadyExists, 72 InvalidOptions, "
            + "73 InvalidNamespace, 79 UnknownReplWriteConcern, 85 IndexOptionsConflict, "
            + "86 IndexKeySpecsConflict, 89 NetworkTimeout, 90 CallbackCanceled, 91 ShutdownInProgress, "
            + "96 OperationFailed, 100 UnsatisfiableWriteConcern, 112 WriteConflict, "
            + "115 CommandNotSupported, 117 ConflictingOperationInProgress, 121 DocumentValidationFailure, "
            + "125 CommandFailed, 133 FailedToSatisfyReadPreference, "
            + "134 ReadConcernMajorityNotAvailableYet, 136 CappedPositionLost, 148 ReadConcernMajorityNotEnabled, "
            + "150 StaleEpoch, 175 QueryPlanKilled, 189 PrimarySteppedDown, 202 NetworkInterfaceExceededTimeLimit, "
            + "206 NoSuchSession, 211 KeyNotFound, 215 DatabaseDropPending, 225 TransactionTooOld, "
            + "237 CursorKilled, 244 NOT_YET_AVAILABLE_TransactionAborted, 246 SnapshotUnavailable, "
            + "251 NoSuchTransaction, 256 TransactionCommitted, 257 TransactionTooLarge, "
            + "262 ExceededTimeLimit, 263 OperationNotSupportedInTransaction, 266 FailPointSetFailed, "
            + "267 PreparedTransactionInProgress, 279 ClientDisconnect, 280 ChangeStreamFatalError, "
            + "286 ChangeStreamHistoryLost, 9001 SocketException, 10058 LegacyNotPrimary, "
            + "10107 NotWritablePrimary, 11000 DuplicateKey, 11600 InterruptedAtShutdown, 11601 Interrupted, "
            + "11602 InterruptedDueToReplStateChange, 13388 StaleConfig, 13435 NotPrimaryNoSecondaryOk, "
            + "13436 NotPrimaryOrSecondary, 50768 NotARetryableWriteCommand";
        for (String entry : table.split(", ")) {
            String[] pair = entry.split(" ");
            NAMES.put(Integer.valueOf(pair[0]), pair[1]);
        }
    }

    private ErrorCodes() {
    }

    static String name(int code) {
        return NAMES.getOrDefault(code, "Location" + code);
    }
}
